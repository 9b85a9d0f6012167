"""The engine every stage runs on: the one loop (batches, acks after a safe write, signals, exit
status), the producers' loop, opening a stage's ends, progress and metrics. `cli/` only turns
options into a stage and its ends."""
