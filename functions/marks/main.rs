//! The `marks` Lambda: the narration's word timings.
use storyreel::steps::{MarksInput, marks};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("marks", |env, input: MarksInput| async move {
        marks(input, env.store.as_ref(), &env.narrators).await
    })
    .await
}
