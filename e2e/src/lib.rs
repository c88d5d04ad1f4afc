//! End-to-end tests live in `tests/e2e/`: each starts a real `k1s server` in its own network
//! and mount namespace and drives it only through kubectl (1.32 and 1.35) and helm.
