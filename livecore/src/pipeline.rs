//! The core's bytes are written by a thread of their own, so that reading
//! the process's memory and writing the core overlap: while one copy buffer
//! is being written, the next is being read. With stop-and-copy, the
//! process is let go as soon as its last byte is read, not written.
//!
//! There are two buffers (the dumper's memory is about twice the copy
//! buffer); the reader takes a free one or waits for the writer to give
//! one back.

use crate::sink::CoreSink;
use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// What the writer is given, in file order.
enum Job {
    /// Bytes to write as they are.
    Bytes(Vec<u8>),
    /// A hole.
    Hole(u64),
    /// A copy buffer: its first `data.len()` pages, each written or left a
    /// hole (`data[i]` false); the buffer goes back to the reader.
    Pages {
        buffer: Vec<u8>,
        data: Vec<bool>,
        page: usize,
    },
}

/// The writing side of a core.
pub struct Writer {
    jobs: Option<SyncSender<Job>>,
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<(u64, u64)>>>,
    position: u64,
    made: usize,
    buffers: usize,
    buffer_size: usize,
}

fn write_pages(sink: &mut CoreSink, buffer: &[u8], data: &[bool], page: usize) -> io::Result<()> {
    let mut i = 0;
    while i < data.len() {
        let kind = data[i];
        let end = (i..data.len())
            .find(|&j| data[j] != kind)
            .unwrap_or(data.len());
        if kind {
            sink.write(&buffer[i * page..end * page])?;
        } else {
            sink.skip(((end - i) * page) as u64)?;
        }
        i = end;
    }
    Ok(())
}

impl Writer {
    /// Starts the writing thread over `sink`, with `buffers` copy buffers
    /// of `buffer_size` bytes.
    pub fn new(mut sink: CoreSink, buffers: usize, buffer_size: usize) -> io::Result<Writer> {
        let (jobs, incoming) = sync_channel::<Job>(buffers + 8);
        let (give_back, spare) = sync_channel::<Vec<u8>>(buffers);
        let thread = std::thread::Builder::new()
            .name("core-writer".into())
            .spawn(move || {
                for job in incoming {
                    match job {
                        Job::Bytes(bytes) => sink.write(&bytes)?,
                        Job::Hole(len) => sink.skip(len)?,
                        Job::Pages { buffer, data, page } => {
                            write_pages(&mut sink, &buffer, &data, page)?;
                            // The reader may be gone (an error): fine.
                            let _ = give_back.send(buffer);
                        }
                    }
                }
                sink.finish()
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            spare,
            thread: Some(thread),
            position: 0,
            made: 0,
            buffers,
            buffer_size,
        })
    }

    /// The writer's error once it has stopped on one.
    fn failed(&mut self) -> io::Error {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the core's writing thread panicked"),
            _ => io::Error::other("the core's writing thread stopped"),
        }
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        let sent = match &self.jobs {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.failed())
        }
    }

    /// A free copy buffer (made while fewer than `buffers` exist, else given
    /// back by the writer).
    pub fn buffer(&mut self) -> io::Result<Vec<u8>> {
        if self.made < self.buffers {
            self.made += 1;
            return Ok(vec![0u8; self.buffer_size]);
        }
        match self.spare.recv() {
            Ok(buffer) => Ok(buffer),
            Err(_) => Err(self.failed()),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.position += bytes.len() as u64;
        self.send(Job::Bytes(bytes.to_vec()))
    }

    pub fn skip(&mut self, len: u64) -> io::Result<()> {
        self.position += len;
        self.send(Job::Hole(len))
    }

    /// Writes the first `data.len()` pages of `buffer` (holes where `data`
    /// is false) and gets the buffer back later through [`Writer::buffer`].
    pub fn write_pages(&mut self, buffer: Vec<u8>, data: Vec<bool>, page: usize) -> io::Result<()> {
        self.position += (data.len() * page) as u64;
        self.send(Job::Pages { buffer, data, page })
    }

    /// The core's size so far (what was handed to the writer).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Waits for everything to be written; returns the core's size and the
    /// bytes written (see [`CoreSink::finish`]).
    pub fn finish(mut self) -> io::Result<(u64, u64)> {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(io::Error::other("the core's writing thread panicked")),
        }
    }
}
