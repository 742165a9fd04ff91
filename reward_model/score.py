"""`python -m reward_model.score` still runs the scoring command line, which lives in score_cli.py."""

from reward_model.score_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
