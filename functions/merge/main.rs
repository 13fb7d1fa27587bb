//! The `merge` Lambda: chunks and narration joined into one MP4 without re-encoding.
use storyreel::steps::{MergeInput, merge};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("merge", |env, input: MergeInput| async move {
        merge(input, env.store.as_ref(), env.jobs.as_ref(), &env.scratch).await
    })
    .await
}
