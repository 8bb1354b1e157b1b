"""Task plug-ins (single-label classification; regression and multi-label next) and their registry.

A task registers itself when its module is imported (:mod:`headstart.tasks.classification`).

>>> from headstart.tasks import get_task
>>> get_task("classification").summary
('accuracy', 'macro_f1', 'roc_auc')
"""

from headstart.tasks.base import (
    DEFAULT_TASK,
    TASKS,
    ProbeResult,
    Task,
    get_task,
    known_tasks,
    register_task,
    task_of_manifest,
)

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "ProbeResult",
    "Task",
    "get_task",
    "known_tasks",
    "register_task",
    "task_of_manifest",
]
