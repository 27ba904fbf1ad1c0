//! Fault points (FoundationDB's BUGGIFY): places inside the system where, in simulation with
//! buggify turned on, the code itself misbehaves in ways the network and disk faults outside it
//! cannot reach as precisely: a reply held back, a reply lost after its request took effect, a
//! fetch answered short, a sync that crawls. Off unless the harness enables madsim's buggify for
//! the run; never in real mode.
//!
//! As in FoundationDB, a point is first judged once per run (active or not, one in four), and an
//! active point then fires at its own rate each time it is passed; so one run leans on a few points
//! hard rather than on every point a little. Each firing is also a coverage mark.

use std::time::Duration;

/// A place where the system may misbehave on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    /// A broker holds a reply back before writing it (up to half a second).
    DelayReply,
    /// A broker handles a request and closes the connection instead of answering: the request
    /// took effect, its answer is lost.
    DropReply,
    /// A leader answers a fetch with one batch per partition, however much more there is.
    ShortFetch,
    /// A log's sync takes longer (up to 200 ms) than the disk's own latency.
    SlowSync,
    /// A log's sync fails with an I/O error, as an fsync may on a real disk; what it was to make
    /// durable stays written but unsynced.
    FailSync,
    /// A partition leader holds a transactional produce back before handling it, for six to
    /// twelve seconds: longer than the client waits, so the client has moved on (aborted its
    /// transaction, begun the next) when the produce lands.
    DelayTxnRequest,
    /// A coordinator holds an EndTxn back the same way, for six to twenty seconds.
    DelayEndTxn,
}

impl Point {
    pub const ALL: [Point; 7] = [
        Point::DelayReply,
        Point::DropReply,
        Point::ShortFetch,
        Point::SlowSync,
        Point::FailSync,
        Point::DelayTxnRequest,
        Point::DelayEndTxn,
    ];

    /// The point's name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Point::DelayReply => "delay-reply",
            Point::DropReply => "drop-reply",
            Point::ShortFetch => "short-fetch",
            Point::SlowSync => "slow-sync",
            Point::FailSync => "fail-sync",
            Point::DelayTxnRequest => "delay-txn-request",
            Point::DelayEndTxn => "delay-end-txn",
        }
    }

    /// The point of that name.
    pub fn named(name: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.name() == name)
    }
}

#[cfg(madsim)]
impl Point {
    /// How often an active point fires when passed.
    fn rate(self) -> f64 {
        match self {
            Point::DelayReply => 0.02,
            Point::DropReply => 0.002,
            Point::ShortFetch => 0.05,
            Point::SlowSync => 0.02,
            Point::FailSync => 0.01,
            Point::DelayTxnRequest => 0.05,
            Point::DelayEndTxn => 0.1,
        }
    }

    fn mark(self) -> crate::coverage::Mark {
        use crate::coverage::Mark;
        match self {
            Point::DelayReply => Mark::FaultPointDelayReply,
            Point::DropReply => Mark::FaultPointDropReply,
            Point::ShortFetch => Mark::FaultPointShortFetch,
            Point::SlowSync => Mark::FaultPointSlowSync,
            Point::FailSync => Mark::FaultPointFailSync,
            Point::DelayTxnRequest => Mark::FaultPointDelayTxnRequest,
            Point::DelayEndTxn => Mark::FaultPointDelayEndTxn,
        }
    }
}

#[cfg(madsim)]
thread_local! {
    /// Whether the points are on: a flag of this thread's, so that a pass with them off costs
    /// no lock on the simulation's random stream.
    static ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Each point's once-a-run verdict, `None` until it is first passed.
    static ACTIVE: std::cell::RefCell<[Option<bool>; Point::ALL.len()]> =
        const { std::cell::RefCell::new([None; Point::ALL.len()]) };
}

/// Whether `point` misbehaves this time. Draws from the simulation's random stream only while
/// buggify is on, so a run without it is the run it always was.
pub fn fires(point: Point) -> bool {
    #[cfg(madsim)]
    {
        use madsim::buggify::{buggify, buggify_with_prob};
        if !ON.get() {
            return false;
        }
        let active = ACTIVE.with_borrow_mut(|a| *a[point as usize].get_or_insert_with(buggify));
        // With madsim's buggify off (`enable_named`), the points draw from the stream directly.
        let fired = active
            && if madsim::buggify::is_enabled() {
                buggify_with_prob(point.rate())
            } else {
                madsim::rand::Rng::gen_bool(&mut madsim::rand::thread_rng(), point.rate())
            };
        if fired {
            crate::coverage::hit(point.mark());
        }
        fired
    }
    #[cfg(not(madsim))]
    {
        let _ = point;
        false
    }
}

/// Forgets the once-a-run verdicts, and turns the points off: a run starts with none.
pub fn reset() {
    #[cfg(madsim)]
    {
        ACTIVE.with_borrow_mut(|a| *a = [None; Point::ALL.len()]);
        ON.set(false);
    }
}

/// Turns on only the points `named` (each active for the whole run), leaving madsim's own buggify
/// off: a scenario that shows what a point does gets that point, and not madsim's network
/// delays.
pub fn enable_named(named: &[Point]) {
    #[cfg(madsim)]
    {
        ON.set(true);
        ACTIVE.with_borrow_mut(|a| {
            for p in Point::ALL {
                a[p as usize] = Some(named.contains(&p));
            }
        });
    }
    #[cfg(not(madsim))]
    let _ = named;
}

/// Makes `point` active (`true`) or inactive for the whole run, whatever the draw would have
/// said: a scenario that shows what one point does asks for it alone. Call after `enable(true)`.
pub fn force(point: Point, active: bool) {
    #[cfg(madsim)]
    ACTIVE.with_borrow_mut(|a| a[point as usize] = Some(active));
    #[cfg(not(madsim))]
    let _ = (point, active);
}

/// Turns the points on (`true`) or off for the run under way on this thread: madsim's buggify
/// with them, whose random stream they draw from. Only the harness calls this.
pub fn enable(on: bool) {
    #[cfg(madsim)]
    {
        ON.set(on);
        if on {
            madsim::buggify::enable();
        } else {
            madsim::buggify::disable();
        }
    }
    #[cfg(not(madsim))]
    let _ = on;
}

/// A misbehaving wait of up to `max`, drawn from the simulation's random stream.
pub fn delay(max: Duration) -> Duration {
    #[cfg(madsim)]
    {
        let micros = max.as_micros().max(1) as u64;
        Duration::from_micros(madsim::rand::Rng::gen_range(
            &mut madsim::rand::thread_rng(),
            0..micros,
        ))
    }
    #[cfg(not(madsim))]
    {
        let _ = max;
        Duration::ZERO
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;

    /// Passes every point 2,000 times in a run of `seed`; how many firings, and how many marks.
    fn pass_points(seed: u64, buggify: bool) -> (u64, u64) {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, Default::default());
        runtime.block_on(async move {
            reset();
            crate::coverage::reset();
            if buggify {
                enable(true);
            }
            let mut fired = 0;
            for _ in 0..2_000 {
                for p in Point::ALL {
                    fired += u64::from(fires(p));
                }
            }
            let marked = (crate::coverage::counts().into_iter())
                .filter(|(m, _)| Point::ALL.iter().any(|p| p.mark() == *m))
                .map(|(_, n)| n)
                .sum();
            (fired, marked)
        })
    }

    #[test]
    fn points_stay_quiet_until_buggify_is_on_then_some_fire_and_count_as_marks() {
        assert_eq!(pass_points(1, false), (0, 0));
        let mut total = 0;
        for seed in 0..8 {
            let (fired, marked) = pass_points(seed, true);
            assert_eq!(fired, marked, "seed {seed}");
            total += fired;
        }
        // Each point is active in a run one time in four: eight runs leave none active with a
        // chance of 0.75^32.
        assert!(total > 0, "no point fired in eight runs");
    }
}
