//! wirecall runtime (in progress).
