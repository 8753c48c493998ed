def run_facts(load_before: tuple[float, float, float]) -> dict[str, object]:
    """What a timing depends on: the load average before and after the run, Python, the CPUs."""
    import os
    import platform

    return {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
