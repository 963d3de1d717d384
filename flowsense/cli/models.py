"""``flowsense models``: the MLflow registry - registered models, versions, aliases, metrics; promotion."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from flowsense.cli.common import console, fail, reported_errors, settings

SHOWN_METRICS = ("accuracy", "f1", "log_loss", "n")


def _metrics(run_id: str, cfg: Any) -> dict[str, float]:
    from flowsense.models.registry import run_metrics

    try:
        return run_metrics(run_id, cfg) if run_id else {}
    except Exception:  # a version whose run was deleted still lists
        return {}


def register(app: typer.Typer) -> None:
    @app.command()
    def models(
        name: Annotated[str | None, typer.Argument(help="A registered model (flowsense-xgboost or xgboost); "
                                                   "default: list every model.")] = None,
        promote: Annotated[str | None, typer.Option(help="Make this version challenger and promote it if it "
                                                    "beats the champion (McNemar on the same events).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """List registered models (champion/challenger, metrics) or one model's versions."""
        from flowsense.models import registry

        cfg = settings()
        with reported_errors():
            if promote is not None:
                if name is None:
                    fail("--promote needs a model name: flowsense models xgboost --promote 3")
                d = registry.promote(name, promote, settings=cfg)
                if as_json:
                    print(json.dumps(d.to_dict(), default=str))
                else:
                    console.print(("[green]promoted[/] " if d.promoted else "[yellow]kept[/] ")
                                  + f"{d.name} v{d.challenger}: {d.reason}", highlight=False)
                return
            if name is None:
                out = []
                for n in registry.registered_models(cfg):
                    vs = registry.versions(n, cfg)
                    champ = next((v for v in vs if registry.CHAMPION in v.aliases), None)
                    chal = next((v for v in vs if registry.CHALLENGER in v.aliases), None)
                    out.append({"name": n, "versions": len(vs), "latest": vs[0].version if vs else None,
                                "champion": champ.version if champ else None,
                                "challenger": chal.version if chal else None,
                                "champion_metrics": {k: v for k, v in _metrics(champ.run_id, cfg).items()
                                                     if k in SHOWN_METRICS} if champ else {}})
                if as_json:
                    print(json.dumps({"mlflow_uri": cfg.mlflow_uri, "models": out}, default=str))
                    return
                if not out:
                    console.print(f"no registered models in {cfg.mlflow_uri} (run `flowsense train`)")
                    return
                from rich.table import Table

                t = Table(title=f"registered models ({cfg.mlflow_uri})")
                for c in ("model", "versions", "champion", "challenger", "accuracy", "n"):
                    t.add_column(c)
                for r in out:
                    m = r["champion_metrics"]
                    t.add_row(r["name"], str(r["versions"]), str(r["champion"] or "-"), str(r["challenger"] or "-"),
                              f"{m['accuracy']:.4f}" if "accuracy" in m else "-",
                              f"{int(m['n']):,}" if "n" in m else "-")
                console.print(t)
                return
            vs = registry.versions(name, cfg)
            rows = [{**v.to_dict(), "metrics": {k: x for k, x in _metrics(v.run_id, cfg).items()
                                                if k in SHOWN_METRICS},
                     "promotion": v.tags.get("promotion_decision")} for v in vs]
            if as_json:
                print(json.dumps({"name": registry.model_name(name), "versions": rows}, default=str))
                return
            from rich.table import Table

            t = Table(title=registry.model_name(name))
            for c in ("version", "aliases", "created", "train window", "data version", "accuracy", "n"):
                t.add_column(c, overflow="fold")
            for r in rows:
                m = r["metrics"]
                t.add_row(r["version"], ",".join(r["aliases"]) or "-", (r["created"] or "")[:16],
                          f"{r['train_start']}..{r['train_end']}", r["data_version"] or "-",
                          f"{m['accuracy']:.4f}" if "accuracy" in m else "-",
                          f"{int(m['n']):,}" if "n" in m else "-")
            console.print(t)
            for r in rows[:5]:
                if r["promotion"]:
                    console.print(f"v{r['version']}: {r['promotion']}", highlight=False)
