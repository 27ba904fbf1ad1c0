//! What the tests that drive a partition log directly share: a one-record batch, and making
//! everything appended durable on the simulated disk.

use bytes::Bytes;
use logsim::world::disk::SimDisk;
use model::log::{Log, SyncTicket};

/// A batch of one record holding `value`, as a producer would send it.
pub fn record(value: &str) -> Vec<u8> {
    model::batch::encode(&[(None, Bytes::from(value.to_owned()))], 0).to_vec()
}

/// Syncs every file the log has appended to, as the broker's sync task does.
pub fn sync(log: &mut Log, disk: &SimDisk) {
    let ticket = log.sync_ticket();
    sync_files(&ticket, disk);
    log.complete_sync(&ticket);
}

/// Syncs the files `ticket` names, leaving the log to hear of it (`complete_sync`) later.
pub fn sync_files(ticket: &SyncTicket, disk: &SimDisk) {
    madsim::runtime::Runtime::new().block_on(async {
        for path in ticket.paths() {
            model::env::Disk::sync(disk, path).await.expect("syncs");
        }
    });
}
