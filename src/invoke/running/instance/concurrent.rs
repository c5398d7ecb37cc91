//! Lambda Managed Instances' model: one execution environment takes up to
//! `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once, the runtime asking with as many concurrent
//! `GET next`s (lambda_runtime's `run_concurrent` runs one worker per slot). Each `next` is held
//! until there is an event for it; each response, error or stream goes to its invocation by
//! request id. An invocation ends with its outcome (the runtime's next `next` belongs to no
//! invocation now), so START / END / REPORT are written per invocation, interleaved.
//!
//! A `next` past the limit is refused: AWS documents that the API accepts up to the limit and
//! says nothing of the call after it, and holding it would hide a runtime that polls more often
//! than it was told to (400, its message naming the variable).
//!
//! A crash or a timeout resets the environment, as with one invocation at a time: every
//! invocation that shared it fails with it. The extensions get the INVOKE events they registered
//! for when they wait for one, and do not hold an invocation's end.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::init::Init;
use super::invocation::Invocation;
use super::{Happening, Instance, ResponseStream, Result};
use crate::invoke::ids;
use crate::invoke::invoke_api::Caller;
use crate::invoke::record::Record;
use crate::invoke::running::server::{ApiRequest, Body, Piece, Route};
use crate::lambda::MAX_CONCURRENCY_VARIABLE;

/// How often the loop looks for new events while it waits on the function.
const TAKE_EVERY: Duration = Duration::from_millis(20);

/// How long an event waits behind a single busy `next` before the function is said to run
/// one invocation at a time.
const SEQUENTIAL_AFTER: Duration = Duration::from_millis(300);

/// An event to run, and where its response goes.
pub struct Job<S> {
    pub event: Vec<u8>,
    pub caller: Caller,
    pub stream: S,
}

/// Where the events come from and where their records go: `invoke`'s list, `serve`'s requests.
pub trait Jobs {
    type Stream: ResponseStream;
    /// An event waiting now, if any; never blocks.
    fn take(&mut self) -> Option<Job<Self::Stream>>;
    /// Whether no event will come any more: the loop ends once the running ones have ended.
    fn finished(&mut self) -> bool;
    /// An invocation ended; its outcome was told to `stream` already.
    fn ended(&mut self, record: Record, stream: Self::Stream);
}

/// An invocation in flight, with where its response goes.
struct Flight<S> {
    invocation: Invocation,
    stream: S,
    init_duration: Option<Duration>,
    restore_duration: Option<Duration>,
}

impl Instance<'_> {
    /// Runs `jobs`' events, up to `AWS_LAMBDA_MAX_CONCURRENCY` at once on one process (a new one
    /// after a crash or a timeout), until `jobs` is finished and nothing runs. `Err` only for the
    /// tool's own failures and Ctrl-C.
    pub fn run_jobs<J: Jobs>(&mut self, jobs: &mut J) -> Result<()> {
        let mut queue: VecDeque<(Job<J::Stream>, Instant)> = VecDeque::new();
        let mut flights: Vec<Flight<J::Stream>> = Vec::new();
        let mut warned = false;
        loop {
            while let Some(job) = jobs.take() {
                queue.push_back((job, Instant::now()));
            }
            if queue.is_empty() && flights.is_empty() && jobs.finished() {
                return Ok(());
            }
            let mut cold = None;
            if self.process.is_none() && !queue.is_empty() {
                let request_id = ids::request_id();
                match self.init(&request_id)? {
                    Init::Ready(duration) => cold = Some((request_id, duration)),
                    Init::Failed(record) => {
                        if let Some((mut job, _)) = queue.pop_front() {
                            job.stream.answered(&record.outcome);
                            jobs.ended(record, job.stream);
                        }
                        continue;
                    }
                }
            }
            if let Some(next) = self.next.take() {
                self.held.push(next);
            }
            while !queue.is_empty() && !self.held.is_empty() {
                let next = self.held.remove(0);
                let Some((job, _)) = queue.pop_front() else {
                    break;
                };
                let (request_id, (init_duration, restore_duration)) = match cold.take() {
                    Some((id, duration)) => (id, self.cold_durations(Some(duration))),
                    None => (ids::request_id(), (None, None)),
                };
                let invocation = self.deliver_to(next, request_id, &job.event, &job.caller);
                flights.push(Flight {
                    invocation,
                    stream: job.stream,
                    init_duration,
                    restore_duration,
                });
            }
            if !warned && self.runs_sequentially(&queue, flights.len()) {
                warned = true;
                self.log.warn(&format!(
                    "the function takes one invocation at a time although \
                     {MAX_CONCURRENCY_VARIABLE}={}: only one `next` waits while events queue. \
                     With lambda_runtime, enable its `concurrency-tokio` feature and call \
                     `lambda_runtime::run_concurrent` instead of `run` (without the feature, it \
                     logs that it is \"running sequentially\" when it starts)",
                    self.concurrency
                ));
            }
            let now = Instant::now();
            let until = flights
                .iter()
                .filter(|f| f.invocation.outcome.is_none())
                .map(|f| f.invocation.deadline)
                .fold(now + TAKE_EVERY, Instant::min);
            let happening = self.wait(until)?;
            self.concurrent_happening(happening, &mut flights);
            self.concurrent_deadlines(&mut flights);
            self.land(&mut flights, jobs);
            if flights.is_empty() && self.process.as_ref().is_some_and(|p| p.exit().is_some()) {
                // It ended between invocations: the next event starts a new one.
                self.shutdown("failure");
            }
        }
    }

    /// Events wait behind one busy invocation while the function was told to take several:
    /// it polls with a single `next`.
    fn runs_sequentially<S>(&self, queue: &VecDeque<(Job<S>, Instant)>, running: usize) -> bool {
        self.concurrency > 1
            && running == 1
            && self.held.is_empty()
            && self.process.is_some()
            && queue
                .front()
                .is_some_and(|(_, since)| since.elapsed() >= SEQUENTIAL_AFTER)
    }

    fn concurrent_happening<S: ResponseStream>(
        &mut self,
        happening: Happening,
        flights: &mut [Flight<S>],
    ) {
        match happening {
            Happening::Request(request) => self.concurrent_request(*request, flights),
            Happening::StreamPiece(id, piece) => self.concurrent_piece(&id, piece, flights),
            Happening::Exited => {
                for flight in flights.iter_mut() {
                    self.end_stream(flight);
                    if flight.invocation.outcome.is_none() {
                        self.runtime_exited(&mut flight.invocation, &mut flight.stream);
                    }
                }
            }
            Happening::Extension | Happening::Piece(_) | Happening::Deadline => {}
        }
    }

    /// A request of the Runtime API, routed by request id.
    fn concurrent_request<S: ResponseStream>(
        &mut self,
        request: ApiRequest,
        flights: &mut [Flight<S>],
    ) {
        let id = match &request.route {
            Route::Next => {
                if self.held.len() >= self.concurrency as usize {
                    let message = format!(
                        "{} `next` calls wait already, as many as {MAX_CONCURRENCY_VARIABLE}={} \
                         allows: poll with at most that many at once",
                        self.held.len(),
                        self.concurrency
                    );
                    self.log
                        .warn(&format!("refused a `next` of the runtime: {message}"));
                    return request.reject(400, "TooManyConcurrentRequests", &message);
                }
                return self.held.push(request);
            }
            Route::Response(id) | Route::Error(id) => id.clone(),
            Route::InitError => return request.invalid_state("Running", "InitError"),
            _ => return request.not_found(),
        };
        let streaming = self.streams.iter().any(|(s, _)| *s == id);
        let Some(flight) = flights
            .iter_mut()
            .find(|f| f.invocation.request_id == id && f.invocation.outcome.is_none())
        else {
            return request.invalid_request_id();
        };
        if streaming {
            return request.invalid_request_id();
        }
        match request.route {
            Route::Response(_) if matches!(request.body, Body::Streaming(_)) => {
                // `response` keeps one stream, in `streaming`; here each has its own.
                self.response(&mut flight.invocation, true, request, &mut flight.stream);
                if let Some(streaming) = self.streaming.take() {
                    self.streams.push((id, streaming));
                }
            }
            Route::Response(_) => {
                self.response(&mut flight.invocation, true, request, &mut flight.stream)
            }
            _ => self.error(&mut flight.invocation, true, request),
        }
    }

    fn concurrent_piece<S: ResponseStream>(
        &mut self,
        id: &str,
        piece: Piece,
        flights: &mut [Flight<S>],
    ) {
        let Some(at) = self.streams.iter().position(|(s, _)| s == id) else {
            return;
        };
        let (id, streaming) = self.streams.remove(at);
        let Some(flight) = flights.iter_mut().find(|f| f.invocation.request_id == id) else {
            return;
        };
        self.streaming = Some(streaming);
        self.piece(&mut flight.invocation, piece, &mut flight.stream);
        if let Some(streaming) = self.streaming.take() {
            self.streams.insert(at, (id, streaming));
        }
    }

    /// Ends the flight's stream, cut short, if it still runs.
    fn end_stream<S: ResponseStream>(&mut self, flight: &mut Flight<S>) {
        if let Some(at) = self
            .streams
            .iter()
            .position(|(s, _)| *s == flight.invocation.request_id)
        {
            self.streams.remove(at);
            flight.stream.end(false);
        }
    }

    /// An invocation past its timeout: `Sandbox.Timedout`, and the environment reset, which
    /// the others running in it do not survive.
    fn concurrent_deadlines<S: ResponseStream>(&mut self, flights: &mut [Flight<S>]) {
        let now = Instant::now();
        let Some(late) = flights
            .iter()
            .position(|f| f.invocation.outcome.is_none() && now >= f.invocation.deadline)
        else {
            return;
        };
        for flight in flights.iter_mut() {
            self.end_stream(flight);
        }
        let flight = &mut flights[late];
        self.timed_out(&mut flight.invocation, &mut flight.stream);
        for flight in flights.iter_mut() {
            if flight.invocation.outcome.is_none() {
                self.runtime_exited(&mut flight.invocation, &mut flight.stream);
            }
        }
    }

    /// Ends the invocations that have their outcome (a stream's, once it ended).
    fn land<J: Jobs>(&mut self, flights: &mut Vec<Flight<J::Stream>>, jobs: &mut J) {
        let mut at = 0;
        while at < flights.len() {
            let flight = &flights[at];
            let streaming = self
                .streams
                .iter()
                .any(|(s, _)| *s == flight.invocation.request_id);
            if flight.invocation.outcome.is_none() || streaming {
                at += 1;
                continue;
            }
            let mut flight = flights.remove(at);
            let mut record =
                self.finish(flight.invocation, flight.init_duration, &mut flight.stream);
            record.restore_duration = flight.restore_duration;
            jobs.ended(record, flight.stream);
        }
    }
}
