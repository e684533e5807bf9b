"""Game days: run chaos scenarios live against an environment that is already up.

``gameday`` (console script; also ``python -m chaos.gameday``) keeps a local environment running between
commands (``up`` / ``down``), runs scenarios written as TOML or Python files with a live terminal view,
steady-state probes before, during and after, budgets that abort and heal at once, rollbacks that always
run, and a journal of every action; an external environment is reached through a file with an explicit
allow-list. Modules: ``cli`` (the commands), ``scenario`` (format and validation), ``runner`` (the run
protocol), ``live`` (the view), ``targets`` (local and external targets, probes, emergency heal),
``external`` (the external-target file and allow-list), ``state`` (the kept environment's state file),
``journal`` (JSONL).
"""
