//! A local interpreter for the Amazon States Language (work in progress).
