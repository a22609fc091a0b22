//! Runnable wirecall examples; see `src/bin/`.
