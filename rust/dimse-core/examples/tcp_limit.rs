//! The physical limit of loopback TCP on this machine, for the benchmark suite
//! (`benches/suite.py`) to read its figures against: std::net only, one process, the
//! sender and the receiver each on a thread of their own.
//!
//! - throughput: one connection, the client writes 1 MiB buffers for `--seconds`, the
//!   server reads them (1 MiB reads) and counts; MB/s from the first write to the last
//!   byte read;
//! - ping-pong: one connection with TCP_NODELAY on both ends, the client writes a
//!   `--size`-byte request and waits for the same number of bytes back, for `--seconds`:
//!   round trips/s.
//!
//! Both loops are bounded in time and in count. Prints one JSON object on stdout.
//!
//! ```text
//! cargo build --release --example tcp_limit -p dimse-core
//! target/release/examples/tcp_limit [--seconds 2] [--size 64] [--mode both|throughput|pingpong]
//! ```

use std::error::Error;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const WRITE_SIZE: usize = 1 << 20;
/// Bounds on count, whatever the time bound: 1 TiB, and 100 million round trips.
const MAX_BYTES: u64 = 1 << 40;
const MAX_ROUND_TRIPS: u64 = 100_000_000;

struct Options {
    seconds: f64,
    size: usize,
    mode: String,
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        seconds: 2.0,
        size: 64,
        mode: "both".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => options.seconds = value()?.parse()?,
            "--size" => options.size = value()?.parse()?,
            "--mode" => options.mode = value()?,
            "-h" | "--help" => {
                println!(
                    "tcp_limit [--seconds S] [--size BYTES] [--mode both|throughput|pingpong]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !(options.seconds > 0.0 && options.seconds <= 600.0) {
        return Err("--seconds must be in (0, 600]".into());
    }
    if options.size == 0 || options.size > WRITE_SIZE {
        return Err("--size must be in 1..=1048576".into());
    }
    if !["both", "throughput", "pingpong"].contains(&options.mode.as_str()) {
        return Err("--mode must be both, throughput or pingpong".into());
    }
    Ok(options)
}

/// A listener on a free loopback port and a connected client stream.
fn connect() -> Result<(TcpListener, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    Ok((listener, client))
}

/// (bytes, seconds) of one connection written to as fast as it goes for `seconds`.
fn throughput(seconds: f64) -> Result<(u64, f64)> {
    let (listener, mut client) = connect()?;
    let (mut server, _) = listener.accept()?;
    let reader = thread::spawn(move || -> Result<(u64, Instant)> {
        let mut buffer = vec![0u8; WRITE_SIZE];
        let mut total = 0u64;
        loop {
            let n = server.read(&mut buffer)?;
            if n == 0 {
                return Ok((total, Instant::now()));
            }
            total += n as u64;
        }
    });
    let buffer = vec![0x5au8; WRITE_SIZE];
    let limit = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < limit && sent < MAX_BYTES {
        client.write_all(&buffer)?;
        sent += WRITE_SIZE as u64;
    }
    client.shutdown(Shutdown::Write)?;
    let (received, end) = reader.join().map_err(|_| "reader thread panicked")??;
    if received != sent {
        return Err(format!("sent {sent} bytes, received {received}").into());
    }
    Ok((received, end.duration_since(start).as_secs_f64()))
}

/// (round trips, seconds) of `size`-byte request/response exchanges for `seconds`.
fn ping_pong(seconds: f64, size: usize) -> Result<(u64, f64)> {
    let (listener, mut client) = connect()?;
    let (mut server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let echo = thread::spawn(move || -> Result<()> {
        let mut buffer = vec![0u8; size];
        loop {
            // EOF at a message boundary ends the exchange.
            let mut filled = 0;
            while filled < size {
                let n = server.read(&mut buffer[filled..])?;
                if n == 0 {
                    return if filled == 0 {
                        Ok(())
                    } else {
                        Err("EOF within a request".into())
                    };
                }
                filled += n;
            }
            server.write_all(&buffer)?;
        }
    });
    let request = vec![0x5au8; size];
    let mut response = vec![0u8; size];
    let limit = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut count = 0u64;
    // Check the clock every 64 round trips: Instant::now() is cheap but not free.
    while count < MAX_ROUND_TRIPS && (count % 64 != 0 || start.elapsed() < limit) {
        client.write_all(&request)?;
        client.read_exact(&mut response)?;
        count += 1;
    }
    let took = start.elapsed().as_secs_f64();
    client.shutdown(Shutdown::Write)?;
    echo.join().map_err(|_| "echo thread panicked")??;
    Ok((count, took))
}

fn main() -> Result<()> {
    let options = parse_args()?;
    let mut parts = Vec::new();
    if options.mode != "pingpong" {
        let (bytes, took) = throughput(options.seconds)?;
        parts.push(format!(
            "\"throughput\": {{\"bytes\": {bytes}, \"seconds\": {took:.6}, \"write_size\": {WRITE_SIZE}, \
             \"mb_per_s\": {:.3}, \"mib_per_s\": {:.3}}}",
            bytes as f64 / took / 1e6,
            bytes as f64 / took / (1u64 << 20) as f64
        ));
    }
    if options.mode != "throughput" {
        let (count, took) = ping_pong(options.seconds, options.size)?;
        parts.push(format!(
            "\"pingpong\": {{\"round_trips\": {count}, \"seconds\": {took:.6}, \"size\": {}, \
             \"per_s\": {:.3}}}",
            options.size,
            count as f64 / took
        ));
    }
    println!("{{{}}}", parts.join(", "));
    Ok(())
}
