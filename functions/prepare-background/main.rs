//! The `prepare-background` Lambda: footage uploaded under `backgrounds/incoming/` becomes a
//! library background, or gets a failure record beside it. Started by the bucket's EventBridge
//! rule, and by Lambda with its record of an event that failed every attempt.
use storyreel::steps::{PrepareBackgroundInput, prepare_background};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("prepare-background", |env, input: PrepareBackgroundInput| async move {
        let out = prepare_background(input, env.store.as_ref(), &env.scratch).await?;
        // Nobody reads an asynchronous invocation's answer: the log says what happened.
        lambda_runtime::tracing::info!(status = out.status.as_str(), key = %out.key, "{}", out.message);
        Ok(out)
    })
    .await
}
