"""The machine line every benchmark table starts with."""

import os

from multimodal.machine import cpu, machine


def test_the_machine_names_its_cores_and_cpu():
    assert machine().startswith(f"{os.cpu_count()} cores (") and cpu() in machine()
    assert cpu() and "?" not in cpu().split(";")[0] or not os.path.exists("/proc/cpuinfo")
