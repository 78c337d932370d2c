"""QT-Opt learner: CEM, Bellman target and loss, train state, optimiser partitions, pmapped update."""
