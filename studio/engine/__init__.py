"""Qt-free orchestration: jobs, runs, checkpoints, export, CLI."""
