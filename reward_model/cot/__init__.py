"""Chain-of-thought cold-start data: teachers write trajectories, rejection sampling keeps the good ones."""
