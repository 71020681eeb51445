"""The governance guardian's rules, as pure code: `levels` (the decision table), `readings`
(what a usable tracker reading is), `models` (state, effects, admin requests), `views` (query
answers) and `core` (`GuardianCore`, the state machine). See docs/guardian.md."""
