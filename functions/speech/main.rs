//! The `speech` Lambda: the narration audio.
use storyreel::steps::{SpeechInput, speech};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("speech", |env, input: SpeechInput| async move {
        speech(input, env.store.as_ref(), env.jobs.as_ref(), &env.narrators).await
    })
    .await
}
