import Engine

/// A growable byte buffer for one column's values of a block of rows.
private struct ColumnScratch {
    var base: UnsafeMutablePointer<UInt8>
    var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    /// Makes room for one more value of at most `WorkloadGenerator.maxLine` bytes.
    mutating func reserveValue() {
        if count + WorkloadGenerator.maxLine <= capacity { return }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
        bigger.update(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity *= 2
    }

    func free() { base.deallocate() }
}

/// One generated row waiting to be written into columns.
private typealias Row = (ctx: SessCtx, ev: Ev, received: Int64)

extension WorkloadGenerator {
    /// Rows generated, then written column by column.
    static let blockRows = 2048

    /// Appends up to `n` events as rows of `batch` (only the columns the batch carries) and
    /// returns how many were appended (fewer only when the stream is exhausted). The rows are
    /// the events `nextNDJSON` writes, in the same order, with received_at the arrival time.
    public mutating func nextEvents(_ n: Int, into batch: inout EventBatch) -> Int {
        guard n > 0 else { return 0 }
        var rows: [Row] = []
        rows.reserveCapacity(min(n, WorkloadGenerator.blockRows))
        var scratch = ColumnScratch(capacity: 1 << 20)
        defer { scratch.free() }
        var total = 0
        while total < n {
            rows.removeAll(keepingCapacity: true)
            let want = min(WorkloadGenerator.blockRows, n - total)
            while rows.count < want, let r = nextRow() { rows.append(r) }
            if rows.isEmpty { break }
            appendRows(rows, to: &batch, &scratch)
            total += rows.count
        }
        return total
    }

    /// Writes `rows` into the columns of `batch`, one column at a time.
    private func appendRows(_ rowArray: [Row], to batch: inout EventBatch, _ scratch: inout ColumnScratch) {
        rowArray.withUnsafeBufferPointer { appendRows($0, to: &batch, &scratch) }
    }

    private func appendRows(
        _ rows: UnsafeBufferPointer<Row>, to batch: inout EventBatch, _ scratch: inout ColumnScratch
    ) {
        let cat = catalog
        for column in batch.columns {
            let slot = column.slot
            switch column {
            case .eventID:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.ulid(time: r.pointee.ev.t, hi: r.pointee.ev.idHi, lo: r.pointee.ev.idLo)
                    return true
                }
            case .eventType:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.lit(eventTypeNames[Int(r.pointee.ev.kind.rawValue)])
                    return true
                }
            case .eventVersion:
                ints(&batch.ints[slot], rows) { WorkloadGenerator.version($0.pointee.ev.kind) }
            case .occurredAt:
                ints(&batch.ints[slot], rows) { $0.pointee.ev.t }
            case .receivedAt:
                ints(&batch.ints[slot], rows) { $0.pointee.received }
            case .source:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.lit(sourceNames[Int(r.pointee.ctx.source)])
                    return true
                }
            case .siteID:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.sites[Int(r.pointee.ctx.site)].id.raw)
                    return true
                }
            case .sessionID:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.ulid(time: r.pointee.ctx.sessionTime, hi: r.pointee.ctx.sessionHi, lo: r.pointee.ctx.sessionLo)
                    return true
                }
            case .visitorID:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.ulid(time: r.pointee.ctx.visitorTime, hi: r.pointee.ctx.visitorHi, lo: r.pointee.ctx.visitorLo)
                    return true
                }
            case .pageURL:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    let site = cat.sites[Int(r.pointee.ctx.site)]
                    w.lit("https://")
                    w.put(cat, site.domain.raw)
                    w.put(cat, site.pages[Int(r.pointee.ev.page)].path.raw)
                    return true
                }
            case .pagePath:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.sites[Int(r.pointee.ctx.site)].pages[Int(r.pointee.ev.page)].path.raw)
                    return true
                }
            case .referrerDomain:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    if r.pointee.ctx.referrer >= 0 { w.put(cat, cat.referrers[Int(r.pointee.ctx.referrer)].raw) }
                    return true
                }
            case .userAgent:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.uas[Int(r.pointee.ctx.ua)].ua.raw)
                    return true
                }
            case .deviceType:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.uas[Int(r.pointee.ctx.ua)].device.raw)
                    return true
                }
            case .countryCode:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.countries[Int(r.pointee.ctx.country)].code.raw)
                    return true
                }
            case .region:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.countries[Int(r.pointee.ctx.country)].regions[Int(r.pointee.ctx.region)].raw)
                    return true
                }
            case .properties:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    writeProperties(r.pointee.ctx, r.pointee.ev, &w)
                    return true
                }
            case .propMappingID:
                nullableInts(&batch.ints[slot], rows) { extracted($0.pointee.ctx, $0.pointee.ev).mapping }
            case .propPostID:
                nullableInts(&batch.ints[slot], rows) { extracted($0.pointee.ctx, $0.pointee.ev).post }
            case .propDeviceSlug:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    guard let s = extracted(r.pointee.ctx, r.pointee.ev).slug else { return false }
                    w.put(cat, s)
                    return true
                }
            case .pageTitle:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    guard WorkloadGenerator.hasTitle(r.pointee.ev) else { return false }
                    w.put(cat, cat.sites[Int(r.pointee.ctx.site)].pages[Int(r.pointee.ev.page)].title.raw)
                    return true
                }
            case .campaignID, .utmSource, .utmMedium, .utmCampaign:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    guard WorkloadGenerator.hasCampaign(r.pointee.ctx, r.pointee.ev) else { return false }
                    let c = cat.sites[Int(r.pointee.ctx.site)].campaigns[Int(r.pointee.ctx.campaign)]
                    switch column {
                    case .campaignID: w.put(cat, c.id.raw)
                    case .utmSource: w.put(cat, c.source.raw)
                    case .utmMedium: w.put(cat, c.medium.raw)
                    default: w.put(cat, c.name.raw)
                    }
                    return true
                }
            case .browser:
                // Not nullable: "" when the user agent is not parsed.
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.uas[Int(r.pointee.ctx.ua)].browser.raw)
                    return true
                }
            case .os:
                strings(&batch.strings[slot], rows, &scratch) { r, w in
                    w.put(cat, cat.uas[Int(r.pointee.ctx.ua)].os.raw)
                    return true
                }
            case .utmTerm, .utmContent, .userIDHash:
                for _ in rows.indices { batch.strings[slot].appendNull() }
            }
        }
        batch.setCount(batch.count + rows.count)
    }

    /// Appends one string value per row; `value` writes it and returns false for null.
    private func strings(
        _ col: inout StringColumn, _ rows: UnsafeBufferPointer<Row>, _ scratch: inout ColumnScratch,
        _ value: (UnsafePointer<Row>, inout LineBuf) -> Bool
    ) {
        scratch.count = 0
        let base = UInt32(truncatingIfNeeded: col.bytes.count)
        col.ends.reserveCapacity(col.ends.count + rows.count)
        for i in rows.indices {
            scratch.reserveValue()
            var w = LineBuf(scratch.base + scratch.count)
            let present = value(rows.baseAddress! + i, &w)
            scratch.count += w.n
            col.ends.append(base &+ UInt32(truncatingIfNeeded: scratch.count))
            if col.nulls != nil { col.nulls!.append(!present) }
        }
        col.bytes.append(contentsOf: UnsafeBufferPointer(start: scratch.base, count: scratch.count))
    }

    private func ints(
        _ col: inout Int64Column, _ rows: UnsafeBufferPointer<Row>, _ value: (UnsafePointer<Row>) -> Int64
    ) {
        col.values.reserveCapacity(col.values.count + rows.count)
        for i in rows.indices { col.values.append(value(rows.baseAddress! + i)) }
        if col.nulls != nil { for _ in rows.indices { col.nulls!.append(false) } }
    }

    private func nullableInts(
        _ col: inout Int64Column, _ rows: UnsafeBufferPointer<Row>, _ value: (UnsafePointer<Row>) -> Int64?
    ) {
        for i in rows.indices {
            if let v = value(rows.baseAddress! + i) { col.append(v) } else { col.appendNull() }
        }
    }
}
