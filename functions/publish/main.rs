//! The `publish` Lambda: outputs, link, the job's destinations and job record (or the
//! recorded failure).
use storyreel::steps::{PublishInput, publish};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    storyreel_lambda::run("publish", |env, input: PublishInput| async move {
        publish(
            input,
            env.store.as_ref(),
            env.jobs.as_ref(),
            &env.publishers,
        )
        .await
    })
    .await
}
