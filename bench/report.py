"""The benchmark's figures: ratios against the targets, a table, and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def line(figure: dict[str, Any]) -> str:
    errors = f"  ERRORS {figure['errors']}{error_kinds(figure)}" if figure["errors"] else ""
    rate = f"{figure['rps']:>9.1f} req/s"
    return f"{rate}  p50 {figure['p50_ms']:>7.2f} ms  p99 {figure['p99_ms']:>7.2f} ms{errors}"


def cpu_line(figure: dict[str, Any]) -> str:
    """Where one run's CPU went: milliseconds per request, the processes that spent any."""
    usage = figure.get("cpu")
    if not usage:
        return ""
    spent = sorted(usage["ms_per_request"].items(), key=lambda item: -item[1])
    parts = [f"{label} {ms:.2f}" for label, ms in spent if ms >= 0.005]
    busy = f"machine {usage['machine_busy']:.0%} busy"
    return f"CPU {usage['total_ms_per_request']:.2f} ms/request ({busy}): " + ", ".join(parts)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


def judge(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """The issue's targets, each as a ratio measured in this run at the largest size."""
    sizes = sorted(results["sizes"], key=int)
    small, large = results["sizes"][sizes[0]], results["sizes"][sizes[-1]]
    conns = sorted({int(k.split("@")[1]) for k in large if "@" in k})
    low, high = conns[0], conns[-1]

    def get(runs: dict[str, Any], name: str, c: int = low) -> dict[str, Any]:
        figure: dict[str, Any] = runs[f"{name}@{c}"]
        return figure

    floor, gateway = get(large, "floor"), get(large, "home_gateway_dense_first")
    ratios = {
        "home_via_gateway_vs_floor": _ratio(gateway["rps"], floor["rps"]),
        "home_via_gateway_p99_vs_floor": _ratio(gateway["p99_ms"], floor["p99_ms"]),
        "gateway_over_floor_vs_floor": _ratio(get(large, "gateway_over_floor")["rps"], floor["rps"]),
        "home_direct_vs_floor": _ratio(get(large, "home_feed_dense_first")["rps"], floor["rps"]),
        "p99_largest_vs_smallest": _ratio(
            gateway["p99_ms"], get(small, "home_gateway_dense_first")["p99_ms"]
        ),
        "sparse_vs_dense_p99": _ratio(get(large, "home_gateway_sparse_first")["p99_ms"], gateway["p99_ms"]),
        "deep_vs_first_p99": _ratio(get(large, "home_gateway_dense_deep")["p99_ms"], gateway["p99_ms"]),
    }
    if f"home_gateway_dense_older@{low}" in large:
        ratios["older_vs_first_p99"] = _ratio(
            get(large, "home_gateway_dense_older")["p99_ms"], gateway["p99_ms"]
        )
    if high != low:
        ratios["home_via_gateway_high_vs_low_connections"] = _ratio(
            get(large, "home_gateway_dense_first", high)["rps"], gateway["rps"]
        )
    posting = results.get("posting")
    if posting:
        ratios["post_large_vs_small_group_p99"] = _ratio(
            posting["group_2000"]["p99_ms"], posting["group_20"]["p99_ms"]
        )
        ratios["post_small_vs_large_group_rps"] = _ratio(
            posting["group_20"]["rps"], posting["group_2000"]["rps"]
        )
    for name in ("group_20", "comment", "reaction"):
        usage = (posting or {}).get(name, {}).get("cpu")
        if usage:
            ratios[f"{name}_cpu_ms"] = usage["total_ms_per_request"]
    steady = next((figure for name, figure in (posting or {}).items() if "_at_" in name), None)
    if steady:
        ratios["post_at_rate_p99_ms"] = steady["p99_ms"]
    limits = {
        "home_via_gateway_vs_floor": (">=", 0.30),
        "home_via_gateway_p99_vs_floor": ("<=", 3.0),
        "home_direct_vs_floor": (">=", 0.50),
        "p99_largest_vs_smallest": ("<=", 1.25),
        "sparse_vs_dense_p99": ("<=", 2.0),
        "deep_vs_first_p99": ("<=", 2.5),
        "older_vs_first_p99": ("<=", 2.5),
        "home_via_gateway_high_vs_low_connections": (">=", 0.85),
        "post_large_vs_small_group_p99": ("<=", 1.5),
        "post_small_vs_large_group_rps": ("<=", 1.5),
        # CPU of every process on the machine per write (the database's too), and the
        # latency of posting at a steady rate (bench.rate)
        "group_20_cpu_ms": ("<=", 5.0),
        "comment_cpu_ms": ("<=", 5.0),
        "reaction_cpu_ms": ("<=", 5.0),
        "post_at_rate_p99_ms": ("<=", 50.0),
    }
    targets = {}
    for name, (op, limit) in limits.items():
        if name in ratios:
            value = ratios[name]
            met = value >= limit if op == ">=" else value <= limit
            targets[name] = {"value": value, "target": f"{op} {limit}", "met": met}
    # A saturated machine serves at most cores x 1000 / (CPU ms per request) requests/s: what
    # a throughput target leaves for one request, against what the run spent.
    cores = results.get("machine", {}).get("cpus") or 1
    for name, scenario in (
        ("home_via_gateway_vs_floor", "home_gateway_dense_first"),
        ("home_direct_vs_floor", "home_feed_dense_first"),
    ):
        usage = get(large, scenario).get("cpu")
        if usage and name in targets and floor["rps"]:
            targets[name]["cpu_ms_per_request"] = {
                "spent": usage["total_ms_per_request"],
                "allowed": round(cores * 1000 / (limits[name][1] * floor["rps"]), 3),
                "cores": cores,
            }
    errors = sum(f["errors"] for runs in results["sizes"].values() for k, f in runs.items() if "@" in k)
    targets["no_failed_requests"] = {"value": errors, "target": "== 0", "met": errors == 0}
    return ratios, targets


def table(results: dict[str, Any]) -> str:
    rows = [
        f"\n== {results['backend']}: requests/s and latency (wrk, {results['seconds_per_run']} s per run)"
    ]
    for size, runs in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        older = f", older page = page {runs['older_page_depth'] + 1}" if "older_page_depth" in runs else ""
        rows.append(f"-- {int(size):,} posts (deep page = page {runs['deep_page_depth'] + 1}{older})")
        for name, figure in runs.items():
            if "@" in name:
                rows.append(f"   {name:<34} {line(figure)}")
                rows += [f"      {usage}" for usage in [cpu_line(figure)] if usage]
    for name, figure in results.get("posting", {}).items():
        rows.append(f"   write {name:<28} {line(figure)}")
        rows += [f"      {usage}" for usage in [cpu_line(figure)] if usage]
    rows.append("-- targets at the largest size")
    for name, target in results["targets"].items():
        mark = "met" if target["met"] else "NOT MET"
        rows.append(f"   {name:<42} {target['value']!s:>8}  (target {target['target']})  {mark}")
        budget = target.get("cpu_ms_per_request")
        if budget:
            rows.append(
                f"      spent {budget['spent']:.2f} ms of CPU per request; on {budget['cores']} cores "
                f"the target leaves at most {budget['allowed']:.2f}"
            )
    return "\n".join(rows)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results["sizes"], key=int)
    names = sorted({k for runs in results["sizes"].values() for k in runs if "@" in k})
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name in names:
        points = [(int(s), results["sizes"][s][name]["p99_ms"]) for s in sizes if name in results["sizes"][s]]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")  # 32- and 256-connection runs differ by two orders of magnitude
    ax.set_xlabel("posts in the dataset")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title(f"Home timeline p99 against dataset size ({results['backend']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def error_kinds(figure: dict[str, Any]) -> str:
    """Which errors a run had, when it says (``run_wrk``)."""
    if "status_errors" not in figure:
        return ""
    status, socket = figure["status_errors"], figure["socket_errors"]
    return f" ({status} answers of 400 or more, {socket} broken connections)"
