//! Publishing for storyreel: connected accounts and the platforms' upload protocols, written
//! against their documentation (Google OAuth 2.0 for installed apps, the YouTube Data API v3
//! resumable upload protocol and `thumbnails.set`, TikTok's OAuth v2 and Content Posting API).
//!
//! The clients here are small and stateless: each call is one documented request, and every
//! piece of progress (an upload session, bytes the platform confirmed, a video id) is returned
//! to the caller, which records it on the job before the next call. That is what makes a
//! publish resumable and exactly-once (see ARCHITECTURE.md, "Publishing").

pub mod accounts;
pub mod destination;
pub mod error;
pub mod http;
pub mod oauth;
pub mod platform;
pub mod secret;
pub mod tiktok;
pub mod time;
pub mod youtube;

pub use accounts::{Account, AccountError, TokenStore};
pub use destination::{Destination, DestinationError, DestinationState, DestinationStatus};
pub use error::{ErrorKind, PublishError};
pub use platform::{Endpoints, Platform};
pub use secret::Secret;
