import Engine

/// What the read-only commands (`tally query`, `tally dump`, `tally export`) read: the store,
/// parts and WAL, when no server holds the directory; else the parts alone, with a note
/// saying how much WAL they cannot see.
struct ReadView {
    let snapshot: Snapshot
    /// Set when a server holds the directory.
    let note: String?
    private let store: EventStore?

    init(data: String) throws {
        var options = StoreOptions(directory: data)
        options.backgroundFlush = false
        options.readOnly = true
        do {
            let store = try EventStore(options: options)
            self.store = store
            snapshot = store.snapshot()
            note = nil
        } catch let e where e.code == .resourceExhausted {
            let inventory: Inventory
            do { inventory = try Inventory(directory: data) } catch { throw failure("\(data): \(error)") }
            store = nil
            snapshot = Snapshot(parts: inventory.parts)
            let wal = inventory.walSegments.reduce(0) { $0 + $1.size }
            note = "a server holds \(data): reading its parts only; \(wal) bytes of WAL not yet flushed are not included"
        } catch {
            throw failure("\(data): \(error)")
        }
    }

    func close() { try? store?.close() }
}
