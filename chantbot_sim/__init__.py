"""chantbot's test doubles, shipped beside the product: a stateful GitHub simulator (`chantbot_sim.github`, with
simulated CI) and a fake Anthropic Messages API (`chantbot_sim.messages`). `make demo`, the tests and the
benchmarks drive chantbot against them over HTTP; nothing in `bot/` imports them except the demo."""
