//! What the listings service does when users change: `user.deleted` archives that seller's
//! active listings (consumer `listings-users`).

use super::commands;
use crate::bus::Names;
use crate::bus::consumer::{Delivery, Handler, HandlerError};
use crate::store::{Store, WriteError};

pub struct UserReactions {
    pub db: Store,
    pub names: Names,
}

#[async_trait::async_trait]
impl Handler for UserReactions {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        let mut out = Vec::with_capacity(batch.len());
        for d in batch {
            if d.envelope.kind != "user.deleted" {
                out.push(Ok(()));
                continue;
            }
            let (names, event) = (self.names.clone(), d.envelope.clone());
            let result = self
                .db
                .write(move |t| commands::archive_seller(t, &names, &event))
                .await;
            out.push(match result {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(user = %d.envelope.aggregate_id, archived = n, "archived a deleted seller's listings");
                    }
                    Ok(())
                }
                Err(WriteError::Rejected(e)) => Err(HandlerError::Retry(e.to_string())),
                Err(WriteError::Store(e)) => Err(HandlerError::Retry(e.to_string())),
            });
        }
        out
    }
}
