//! Loopback servers that speak the platforms' documented wire protocols (tests only).
