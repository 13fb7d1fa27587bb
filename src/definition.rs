//! The state machine definition, `statemachine/video.asl.json`, embedded: what the local
//! executor interprets and what the cost model counts transitions over. A leaf module, so the
//! steps (publish writes the cost estimate) and the executor both read it without depending on
//! each other.

/// The state machine, exactly as `template.yaml` deploys it.
pub const DEFINITION: &str = include_str!("../statemachine/video.asl.json");
