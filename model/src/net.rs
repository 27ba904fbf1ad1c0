//! The model's sockets: madsim's simulated TCP under `--cfg madsim`, tokio's real TCP otherwise.
//! Both have the same API, so nothing else in the model knows which one it runs on.

#[cfg(madsim)]
pub use self::simulated::{TcpListener, TcpStream};
#[cfg(not(madsim))]
pub use tokio::net::{TcpListener, TcpStream};

/// madsim's TCP, with one wake per message instead of two.
///
/// A madsim stream that waits to read is woken twice per message: first when the sender flushes,
/// only so that the stream can start timing the message's flight (it takes the message off its
/// channel and arms a timer for its arrival), then when the timer fires and the bytes are there.
/// The first wake polled the reader's whole task (a fetcher, say: its loop, the fetch, the
/// exchange, the deadline, the frame reader) to learn nothing. Here the stream is shared with its
/// own waker, which takes that first step itself while the sender's flush runs, and wakes the task
/// only when there is something to read or the stream ended.
///
/// The step is taken only inside a flush: madsim fires timers with its timer heap locked, and
/// a stream that arms a timer from there (a clogged link retrying) would wait on that lock
/// forever. Every other wake goes straight to the task, as before. The stream and its waker share
/// a `crate::sync::Lock`, bound to the runtime's thread.
#[cfg(madsim)]
mod simulated {
    use std::cell::Cell;
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Weak};
    use std::task::{Context, Poll, Wake, Waker};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use crate::sync::Lock;

    thread_local! {
        /// Whether a stream of this thread is flushing: a wake now comes from a sender.
        static FLUSHING: Cell<bool> = const { Cell::new(false) };
    }

    pub struct TcpListener(madsim::net::TcpListener);

    impl TcpListener {
        pub async fn bind(address: SocketAddr) -> io::Result<Self> {
            madsim::net::TcpListener::bind(address)
                .await
                .map(TcpListener)
        }

        pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
            let (stream, peer) = self.0.accept().await?;
            Ok((TcpStream::new(stream), peer))
        }
    }

    pub struct TcpStream {
        shared: Arc<Lock<Shared>>,
        /// Handed to madsim's stream in place of the task's waker.
        waker: Waker,
    }

    struct Shared {
        stream: madsim::net::TcpStream,
        /// The task that last waited to read.
        task: Option<Waker>,
    }

    /// The stream's own waker. It holds the stream weakly: madsim's stream keeps its wakers, and
    /// a strong hold would keep a dropped connection open.
    struct StreamWaker(Weak<Lock<Shared>>);

    impl Wake for StreamWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            let Some(shared) = self.0.upgrade() else {
                return;
            };
            if FLUSHING.get() {
                // Let the stream take the message off its channel and arm its arrival timer. A
                // read into no room reads nothing: it is ready once bytes or the end are there.
                let waker = Waker::from(self.clone());
                let mut none = ReadBuf::new(&mut []);
                let step = Pin::new(&mut shared.lock().stream)
                    .poll_read(&mut Context::from_waker(&waker), &mut none);
                if step.is_pending() {
                    return;
                }
            }
            let task = shared.lock().task.take();
            if let Some(task) = task {
                task.wake();
            }
        }
    }

    impl TcpStream {
        fn new(stream: madsim::net::TcpStream) -> Self {
            let shared = Arc::new(Lock::new(Shared { stream, task: None }));
            let waker = Waker::from(Arc::new(StreamWaker(Arc::downgrade(&shared))));
            TcpStream { shared, waker }
        }

        pub async fn connect(peer: SocketAddr) -> io::Result<Self> {
            madsim::net::TcpStream::connect(peer).await.map(Self::new)
        }

        pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
            self.shared.lock().stream.set_nodelay(nodelay)
        }
    }

    impl AsyncRead for TcpStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let mut shared = self.shared.lock();
            if !shared
                .task
                .as_ref()
                .is_some_and(|t| t.will_wake(cx.waker()))
            {
                shared.task = Some(cx.waker().clone());
            }
            Pin::new(&mut shared.stream).poll_read(&mut Context::from_waker(&self.waker), buf)
        }
    }

    impl AsyncWrite for TcpStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.shared.lock().stream).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let mut shared = self.shared.lock();
            let before = FLUSHING.replace(true);
            let flushed = Pin::new(&mut shared.stream).poll_flush(cx);
            FLUSHING.set(before);
            flushed
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.shared.lock().stream).poll_shutdown(cx)
        }
    }
}
