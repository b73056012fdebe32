// Encoding: the pure, I/O-free building blocks of parts (Engine/Encoding, Engine/Part/SortKey)
// on realistic data from the workload generator: block codecs on one granule's column
// payloads, the persisted hash, the split-block bloom filter, CRC32C and the sort order.
//
// Units (the name of each benchmark says it too):
// - codecs: per 8,192-row granule block (`.one`); the custom metrics `rawBytes` and
//   `compressedBytes` are the block's size before and after compression, deterministic, so a
//   ratio regression shows in a baseline;
// - hash and bloom filter: per key (`.mega`, one iteration = 1M operations);
// - CRC32C: per 64 KiB buffer (`.kilo`, one iteration = 1,000 buffers);
// - sort order: per call on 100k rows (`.one`);
// - HyperLogLog: per add (`.mega`), per merge or estimate (`.kilo`), per 1,000 sparse adds
//   and per serialization (`.one`, with the deterministic `sketchBytes`).

import Benchmark
import Engine
import Workload

/// Rows in a granule: the unit parts compress, index and read (PartFormat.defaultGranuleRows).
let granuleRows = 8192

/// One generated batch of 100k events (the default workload: seed 42, 20 sites, 92 days), its
/// sort-key order, and payloads laid out as `GranuleCodec` lays out one granule of a column
/// before compression (a null-flag byte, then the encoding's body; FORMAT.md).
struct Fixture: Sendable {
    let batch: EventBatch
    /// The granule: 8,192 consecutive rows in sort-key order (the fifth granule of the part).
    let granule: EventBatch
    /// occurred_at as `int64-delta`: the first value, then wrapping differences, Int64 LE.
    let timestamps: [UInt8]
    /// country_code as `dictionary-codes` of width 1 into the batch's sorted dictionary.
    let countryCodes: [UInt8]
    /// page_path as `string-plain`: LEB128 lengths, then the values' bytes.
    let urlPaths: [UInt8]

    init() {
        var generator = WorkloadGenerator(WorkloadConfig())
        var batch = EventBatch()
        let made = generator.nextEvents(100_000, into: &batch)
        precondition(made == 100_000, "the workload ran out after \(made) events")
        self.batch = batch
        let order = SortKey.sortedOrder(batch, rows: (0..<Int32(batch.count)).map { $0 })
        granule = batch.gather(order[4 * granuleRows..<5 * granuleRows])

        var w = ByteWriter(capacity: granuleRows * 8 + 1)
        w.u8(0)
        var previous: Int64 = 0
        for t in granule[int: .occurredAt].values {
            w.i64(t &- previous)
            previous = t
        }
        timestamps = w.bytes

        // The part dictionary: the batch's distinct values in byte order; a code is a rank.
        let countries = batch[string: .countryCode]
        var distinct = Set<[UInt8]>()
        for i in 0..<countries.count { distinct.insert(countries.withValue(i) { Array($0) }) }
        let dictionary = distinct.sorted { $0.lexicographicallyPrecedes($1) }
        precondition(dictionary.count <= 256, "country_code needs \(dictionary.count) codes, more than 1 byte")
        let code = Dictionary(uniqueKeysWithValues: dictionary.enumerated().map { ($1, UInt8($0)) })
        w = ByteWriter(capacity: granuleRows + 2)
        w.u8(0)
        w.u8(1)
        let granuleCountries = granule[string: .countryCode]
        for i in 0..<granuleRows { w.u8(granuleCountries.withValue(i) { code[Array($0)]! }) }
        countryCodes = w.bytes

        let paths = granule[string: .pagePath]
        w = ByteWriter(capacity: paths.bytes.count + 2 * granuleRows + 1)
        w.u8(0)
        for i in 0..<granuleRows { w.varint(UInt64(Int(paths.ends[i]) - paths.start(i))) }
        w.raw(paths.bytes)
        urlPaths = w.bytes
    }
}

/// Built once per process, on first use (global constants are lazy).
let fixture = Fixture()

/// Wall clock and throughput are for people; `mallocCountTotal` and the byte counts are
/// deterministic and what a comparison may gate.
func configuration(_ scaling: BenchmarkScalingFactor, extra: [BenchmarkMetric] = []) -> Benchmark.Configuration {
    var thresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        .wallClock: .none,
        .throughput: .none,
        .mallocCountTotal: BenchmarkThresholds(absolute: [.p50: 0]),
    ]
    for metric in extra { thresholds[metric] = BenchmarkThresholds(absolute: [.p50: 0]) }
    return Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal] + extra,
        scalingFactor: scaling,
        maxDuration: .seconds(1),
        thresholds: thresholds
    )
}

/// Size of a block after compression: a ratio regression shows up here. Its rows come from
/// the sort order, so a change of `SortKey` changes them too (update the baseline then).
var compressedBytes: BenchmarkMetric {
    .custom("compressedBytes", polarity: .prefersSmaller, useScalingFactor: false)
}

/// Size of the block before compression, for the ratio (`rawBytes / compressedBytes`).
var rawBytes: BenchmarkMetric {
    .custom("rawBytes", polarity: .prefersSmaller, useScalingFactor: false)
}

let benchmarks: @Sendable () -> Void = {
    let payloads: [(name: String, bytes: KeyPath<Fixture, [UInt8]>)] = [
        ("delta timestamps", \.timestamps),
        ("1-byte dictionary codes", \.countryCodes),
        ("URL path bytes", \.urlPaths),
    ]

    for codec in [Codec.zstd, Codec.lz4] {
        for payload in payloads {
            Benchmark(
                "Codec.compress \(codec), \(payload.name) (per 8,192-row block)",
                configuration: configuration(.one, extra: [compressedBytes, rawBytes])
            ) { (benchmark: Benchmark, raw: [UInt8]) in
                var out: [UInt8] = []
                out.reserveCapacity(raw.count + raw.count / 2 + 1024)
                benchmark.startMeasurement()
                let used = raw.withUnsafeBytes { Codec.compress($0, codec: codec, into: &out) }
                benchmark.stopMeasurement()
                if used != codec { benchmark.error("\(codec) stored the block uncompressed") }
                benchmark.measurement(compressedBytes, out.count)
                benchmark.measurement(rawBytes, raw.count)
            } setup: {
                fixture[keyPath: payload.bytes]
            }

            Benchmark(
                "Codec.decompress \(codec), \(payload.name) (per 8,192-row block)",
                configuration: configuration(.one)
            ) { (benchmark: Benchmark, input: (compressed: [UInt8], rawLength: Int)) in
                var out: [UInt8] = []
                out.reserveCapacity(input.rawLength)
                benchmark.startMeasurement()
                do {
                    try input.compressed.withUnsafeBytes {
                        try Codec.decompress($0, codec: codec, rawLength: input.rawLength, into: &out)
                    }
                } catch {
                    benchmark.error("\(error)")
                }
                benchmark.stopMeasurement()
                blackHole(out)
            } setup: {
                let raw = fixture[keyPath: payload.bytes]
                var compressed: [UInt8] = []
                let used = raw.withUnsafeBytes { Codec.compress($0, codec: codec, into: &compressed) }
                precondition(used == codec, "\(codec) stored the block uncompressed")
                return (compressed: compressed, rawLength: raw.count)
            }
        }
    }

    // 4,096 event ids (26-byte ULIDs) back to back: 104 KiB, cache-resident, hashed in turn.
    let idCount = 4096
    func eventIDs() -> [UInt8] {
        let ids = fixture.batch[string: .eventID]
        var out: [UInt8] = []
        for i in 0..<idCount {
            ids.withValue(i) { v in
                precondition(v.count == 26, "event ids are 26-byte ULIDs")
                out.append(contentsOf: v)
            }
        }
        return out
    }

    Benchmark("TallyHash.hash, 26-byte event id (per key)", configuration: configuration(.mega)) { (benchmark: Benchmark, ids: [UInt8]) in
        ids.withUnsafeBytes { all in
            var acc: UInt64 = 0
            for i in benchmark.scaledIterations {
                let k = i & (idCount - 1)
                acc ^= TallyHash.hash(UnsafeRawBufferPointer(rebasing: all[k * 26..<k * 26 + 26]))
            }
            blackHole(acc)
        }
    } setup: {
        eventIDs()
    }

    // One granule's filter: 8,192 distinct keys at 10 bits each (320 blocks, 10 KiB).
    Benchmark(
        "SplitBlockBloomFilter.insert, 8,192-key granule filter (per key)",
        configuration: configuration(.mega)
    ) { (benchmark: Benchmark, hashes: [UInt64]) in
        var filter = SplitBlockBloomFilter(distinctKeys: granuleRows)
        for i in benchmark.scaledIterations { filter.insert(hash: hashes[i & (granuleRows - 1)]) }
        blackHole(filter.numBlocks)
    } setup: {
        eventIDs().withUnsafeBytes { all in
            (0..<granuleRows).map { k in
                let i = k % idCount, round = UInt64(k / idCount)
                return TallyHash.hash(UnsafeRawBufferPointer(rebasing: all[i * 26..<i * 26 + 26]), seed: round)
            }
        }
    }

    Benchmark(
        "SplitBlockBloomFilter.mayContain, half present (per key)",
        configuration: configuration(.mega)
    ) { (benchmark: Benchmark, probe: (filter: SplitBlockBloomFilter, hashes: [UInt64])) in
        var hits = 0
        for i in benchmark.scaledIterations where probe.filter.mayContain(hash: probe.hashes[i & (2 * granuleRows - 1)]) {
            hits += 1
        }
        blackHole(hits)
    } setup: {
        // Present: 8,192 keys inserted; absent: 8,192 others, interleaved.
        let keys = eventIDs().withUnsafeBytes { all in
            (0..<2 * granuleRows).map { k in
                let i = k % idCount, round = UInt64(k / idCount)
                return TallyHash.hash(UnsafeRawBufferPointer(rebasing: all[i * 26..<i * 26 + 26]), seed: round)
            }
        }
        var filter = SplitBlockBloomFilter(distinctKeys: granuleRows)
        for k in keys[0..<granuleRows] { filter.insert(hash: k) }
        var hashes: [UInt64] = []
        for k in 0..<granuleRows { hashes += [keys[k], keys[granuleRows + k]] }
        return (filter: filter, hashes: hashes)
    }

    // 64 KiB of page_path bytes (a typical compressed block is 64 KiB-1 MiB).
    Benchmark("CRC32C.checksum, 64 KiB (per buffer)", configuration: configuration(.kilo)) { (benchmark: Benchmark, buffer: [UInt8]) in
        buffer.withUnsafeBytes { bytes in
            var crc: UInt32 = 0
            for _ in benchmark.scaledIterations { crc ^= CRC32C.checksum(bytes) }
            blackHole(crc)
        }
    } setup: {
        let paths = fixture.batch[string: .pagePath].bytes
        precondition(paths.count >= 65536, "not enough path bytes")
        return Array(paths[0..<65536])
    }

    // The order a flush writes a part in: 100k generated rows (arrival order) sorted by key.
    Benchmark(
        "SortKey.sortedOrder, 100k generated rows (per call)",
        configuration: configuration(.one)
    ) { (benchmark: Benchmark, input: (batch: EventBatch, rows: [Int32])) in
        blackHole(SortKey.sortedOrder(input.batch, rows: input.rows))
    } setup: {
        (batch: fixture.batch, rows: (0..<Int32(fixture.batch.count)).map { $0 })
    }

    sketchBenchmarks()
}

// MARK: HyperLogLog (Engine/Sketch): the sketches behind unique visitors and sessions

/// 2^20 distinct 64-bit hashes (of the integers 0…2^20-1), the stream a sketch is fed with.
let sketchHashes: [UInt64] = (0..<UInt64(1 << 20)).map { i in
    withUnsafeBytes(of: i.littleEndian) { TallyHash.hash($0) }
}

/// A sketch of the first `n` hashes.
func sketch(of n: Int, offset: Int = 0) -> HyperLogLog {
    var s = HyperLogLog()
    for i in 0..<n { s.add(hash: sketchHashes[(offset + i) & (sketchHashes.count - 1)]) }
    return s
}

/// Serialized size of a sketch, in bytes: what a rollup row pays for its uniques.
var sketchBytes: BenchmarkMetric {
    .custom("sketchBytes", polarity: .prefersSmaller, useScalingFactor: false)
}

let sketchBenchmarks: @Sendable () -> Void = {
    // Dense: a sketch past 4,096 entries; every add is one register compare (target: ≥ 50M/s).
    Benchmark("HyperLogLog.add, dense p=14 (per add)", configuration: configuration(.mega)) { (benchmark: Benchmark, start: HyperLogLog) in
        var s = start
        for i in benchmark.scaledIterations { s.add(hash: sketchHashes[i & (sketchHashes.count - 1)]) }
        blackHole(s.isDense)
    } setup: {
        sketch(of: 100_000)
    }

    // Sparse: the common case of a rollup row (a page seen by a few hundred visitors); a fresh
    // sketch takes 1,000 adds, the cost per add includes the sorts that keep it compact.
    Benchmark("HyperLogLog.add, sparse, 1,000 distinct into a new sketch (per 1,000 adds)", configuration: configuration(.one)) { benchmark in
        for round in benchmark.scaledIterations {
            var s = HyperLogLog()
            for i in 0..<1000 { s.add(hash: sketchHashes[(round * 1000 + i) & (sketchHashes.count - 1)]) }
            blackHole(s.isDense)
        }
    }

    Benchmark("HyperLogLog.merge, dense into dense (per merge)", configuration: configuration(.kilo)) { (benchmark: Benchmark, pair: (HyperLogLog, HyperLogLog)) in
        var s = pair.0
        for _ in benchmark.scaledIterations { s.merge(pair.1) }
        blackHole(s.isDense)
    } setup: {
        (sketch(of: 200_000), sketch(of: 200_000, offset: 300_000))
    }

    // A rollup query over a page's days: many small sketches into one.
    Benchmark("HyperLogLog.merge, 30-entry sparse into an accumulator (per merge)", configuration: configuration(.kilo)) { (benchmark: Benchmark, small: [HyperLogLog]) in
        var s = HyperLogLog()
        for i in benchmark.scaledIterations { s.merge(small[i & 1023]) }
        blackHole(s.count)
    } setup: {
        (0..<1024).map { sketch(of: 30, offset: $0 * 30) }
    }

    Benchmark("HyperLogLog.estimate, dense p=14 (per estimate)", configuration: configuration(.kilo)) { (benchmark: Benchmark, s: HyperLogLog) in
        var total = 0.0
        for _ in benchmark.scaledIterations { total += s.estimate() }
        blackHole(total)
    } setup: {
        sketch(of: 1_000_000)
    }

    for n in [3, 100, 1000, 10_000, 1_000_000] {
        Benchmark(
            "HyperLogLog.serialized, \(n) distinct (per sketch)",
            configuration: configuration(.one, extra: [sketchBytes])
        ) { (benchmark: Benchmark, s: HyperLogLog) in
            var bytes = 0
            for _ in benchmark.scaledIterations { bytes = s.serialized().count }
            benchmark.measurement(sketchBytes, bytes)
        } setup: {
            sketch(of: n)
        }
    }
}
