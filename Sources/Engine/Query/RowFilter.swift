extension QueryFilter {
    /// The dimensions the filter names, each once, in order of appearance.
    public var dimensions: [QueryDimension] {
        var out: [QueryDimension] = []
        func collect(_ f: QueryFilter) {
            switch f {
            case .and(let fs), .or(let fs): fs.forEach(collect)
            case .not(let f): collect(f)
            case .condition(let d, _, _): if !out.contains(d) { out.append(d) }
            }
        }
        collect(self)
        return out
    }

    /// Its top-level `is` conditions on stored columns (every row that matches the filter
    /// matches them): the scan prunes granules with them (sort key, bloom filters).
    public var pushedDown: [ColumnFilter] {
        let conjuncts: [QueryFilter]
        if case .and(let fs) = self { conjuncts = fs } else { conjuncts = [self] }
        return conjuncts.compactMap { c in
            if case .condition(.column(let column), .is, let values) = c, !values.contains(where: { $0 == nil || $0 == "" }) {
                return ColumnFilter(column, values)
            }
            return nil
        }
    }
}

extension QueryDimension {
    /// The stored columns its values come from (none for time buckets: occurred_at is always read).
    public var storedColumns: [EventColumn] {
        switch self {
        case .column(let c): [c]
        case .campaign: [.campaignID, .utmCampaign]
        case .prop: [.properties]
        case .time: [.occurredAt]
        case .entryPage, .exitPage: [.pagePath]
        }
    }
}

/// A `QueryFilter` decided row by row on decoded batches, for the questions that read events
/// rather than count them (event lists, funnels, sessions). As in the executor, each
/// dimension's values get dense codes and every condition is decided once per code.
/// Not thread-safe: one per scan.
struct RowFilter {
    let dimensions: [QueryDimension]
    let spaces: [ValueSpace]
    let compiled: CompiledFilter
    let zone: QueryTimeZone

    init(_ filter: QueryFilter, zone: QueryTimeZone) {
        dimensions = filter.dimensions
        spaces = dimensions.map { _ in ValueSpace() }
        compiled = CompiledFilter(filter, dimensions: dimensions)
        self.zone = zone
    }

    /// The columns `matches` reads.
    var columns: Set<EventColumn> { Set(dimensions.flatMap(\.storedColumns)) }

    /// Whether each row of `b` (which carries `columns`) matches.
    func matches(_ b: EventBatch) -> [Bool] {
        let codes = dimensions.enumerated().map { i, d in ExecutionPlan.codes(of: d, in: b, space: spaces[i], zone: zone) }
        return ExecutionPlan.mask(compiled, count: b.count, codes: codes, spaces: spaces)
    }
}
