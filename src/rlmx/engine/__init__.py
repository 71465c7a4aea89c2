"""The RLM loop: prompts, reply parsing, budgets, sub-calls and recursion."""
