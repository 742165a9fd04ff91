"""Proof that the training stack learns: untrained -> SFT -> GRPO stage 1 -> stage 2, SRCC on held-out labels.

    python -m benchmarks.learning_proof --out runs/learning_proof            # synthetic blur task
    python -m benchmarks.learning_proof --out runs/learning_proof --world    # the embedded world's IQA set

The stages are the world's scorer training (`t2i_guidance.world.training.train_scorer`, which the scorer
rebuild also runs); this command is that training run as a measured claim.
"""

from t2i_guidance.world.training.train_scorer import main

if __name__ == "__main__":
    raise SystemExit(main())
