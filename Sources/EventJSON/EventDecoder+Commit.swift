import Engine

/// Writing a fully read event to the batch: the last checks, the derived values and one
/// value per column.
extension EventDecoder {
    /// Appends the drafted event as a row, or records why it is rejected. Every check that
    /// can reject happens before the first column is touched, so a row is all or nothing.
    mutating func commit(index: Int) {
        if let r = draft.rejection {
            reject(index, r.field, r.reason)
            return
        }
        let type = draft[.eventType]
        guard type.hasValue && type.length > 0 else {
            reject(index, InputField.eventType.name, "missing")
            return
        }

        // page_path from page_url when the event sent none.
        var derivedPath: UnsafeRawBufferPointer?
        let url = draft[.pageURL]
        if !draft[.pagePath].hasValue && url.hasValue {
            let bytes = EventDecoder.bytes(of: url, in: scanner.base, using: &urlScratch)
            let p = bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? EventDecoder.slash
            let path =
                if let range = URLParts.path(p, count: bytes.count) {
                    UnsafeRawBufferPointer(rebasing: bytes[range])
                } else {
                    UnsafeRawBufferPointer(start: EventDecoder.slash, count: 1)
                }
            let limit = EventColumn.pagePath.maxLength
            if path.count > limit {
                reject(index, InputField.pageURL.name, "path longer than \(limit) bytes")
                return
            }
            derivedPath = path
        }

        // referrer_domain from the referrer's host when the event sent none.
        var derivedHost: UnsafeRawBufferPointer?
        let referrer = draft[.referrer]
        if !draft[.referrerDomain].hasValue && referrer.hasValue {
            let bytes = EventDecoder.bytes(of: referrer, in: scanner.base, using: &referrerScratch)
            if let p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) {
                derivedHost = UnsafeRawBufferPointer(rebasing: bytes[URLParts.host(p, count: bytes.count)])
            }
            let limit = EventColumn.referrerDomain.maxLength
            if let h = derivedHost, h.count > limit {
                reject(index, InputField.referrer.name, "host longer than \(limit) bytes")
                return
            }
        }

        write(draft[.eventID], to: .eventID)
        write(type, to: .eventType)
        write(draft[.source], to: .source)
        if defersSiteIDs {
            pendingSiteIDs.append(draft[.siteID])
        } else if draft[.siteID].hasValue {
            write(draft[.siteID], to: .siteID)
        } else {
            appendDefaultSiteID()
        }
        write(draft[.sessionID], to: .sessionID)
        write(draft[.visitorID], to: .visitorID)
        write(url, to: .pageURL)
        if let derivedPath {
            append(derivedPath, to: .pagePath)
        } else {
            write(draft[.pagePath], to: .pagePath)
        }
        if let derivedHost {
            appendLowercased(derivedHost, to: .referrerDomain)
        } else {
            write(draft[.referrerDomain], to: .referrerDomain)
        }
        write(draft[.userAgent], to: .userAgent)
        write(draft[.deviceType], to: .deviceType)
        write(draft[.countryCode], to: .countryCode)
        write(draft[.region], to: .region)
        let properties = draft[.properties]
        if properties.hasValue {
            write(properties, to: .properties)
        } else {
            columns.strings[EventColumn.properties.rawValue].append(EventDecoder.emptyObject, count: 2)
        }
        write(draft[.propDeviceSlug], to: .propDeviceSlug)
        write(draft[.pageTitle], to: .pageTitle)
        write(draft[.campaignID], to: .campaignID)
        write(draft[.utmSource], to: .utmSource)
        write(draft[.utmMedium], to: .utmMedium)
        write(draft[.utmCampaign], to: .utmCampaign)
        write(draft[.utmTerm], to: .utmTerm)
        write(draft[.utmContent], to: .utmContent)
        write(draft[.userIDHash], to: .userIDHash)
        write(draft[.browser], to: .browser)
        write(draft[.os], to: .os)

        columns.ints[EventColumn.eventVersion.rawValue].append(draft.eventVersion)
        columns.ints[EventColumn.occurredAt.rawValue].append(draft.occurredAt ?? receivedAt)
        columns.ints[EventColumn.receivedAt.rawValue].append(receivedAt)
        write(draft.mappingID, to: .propMappingID)
        write(draft.postID, to: .propPostID)
        accepted += 1
    }

    /// Writes the rows' `site_id`s held back in document mode: each event's own, else the
    /// envelope's `property_id`, else `IngestOptions.defaultSiteID`, else "".
    mutating func writePendingSiteIDs() {
        for v in pendingSiteIDs {
            if v.hasValue {
                write(v, to: .siteID)
            } else if envelopePropertyID.hasValue {
                write(envelopePropertyID, to: .siteID)
            } else {
                appendDefaultSiteID()
            }
        }
        pendingSiteIDs.removeAll()
    }

    private func appendDefaultSiteID() {
        defaultSiteID.withUnsafeBytes { b in
            columns.strings[EventColumn.siteID.rawValue].append(b.baseAddress ?? UnsafeRawPointer(EventDecoder.slash), count: b.count)
        }
    }

    // MARK: Columns

    /// Appends a string value: its input bytes, its unescaped bytes, or null ("" in a column
    /// that is not nullable).
    @inline(__always) func write(_ v: SlotValue, to column: EventColumn) {
        let buffer = columns.strings + column.rawValue
        switch v.state {
        case .plain:
            buffer.pointee.append(scanner.base + v.start, count: v.length)
        case .escaped:
            let out = buffer.pointee.reserve(v.length)
            let n = JSONUnescaper.unescape(scanner.base, from: v.start, to: v.end, into: out)
            precondition(n == v.length, "unescaped length differs from the scanned length")
            buffer.pointee.close(n)
        case .absent, .null:
            buffer.pointee.appendNull()
        }
    }

    @inline(__always) func write(_ v: Int64?, to column: EventColumn) {
        if let v { columns.ints[column.rawValue].append(v) } else { columns.ints[column.rawValue].appendNull() }
    }

    @inline(__always) func append(_ bytes: UnsafeRawBufferPointer, to column: EventColumn) {
        columns.strings[column.rawValue].append(bytes.baseAddress ?? UnsafeRawPointer(EventDecoder.slash), count: bytes.count)
    }

    /// Appends a host name, ASCII letters lowercased (host names are case-insensitive).
    private func appendLowercased(_ host: UnsafeRawBufferPointer, to column: EventColumn) {
        let buffer = columns.strings + column.rawValue
        let out = buffer.pointee.reserve(host.count)
        for i in 0..<host.count {
            let b = host[i]
            out[i] = b &- UInt8(ascii: "A") < 26 ? b | 0x20 : b
        }
        buffer.pointee.close(host.count)
    }

    static var slash: UnsafePointer<UInt8> { ("/" as StaticString).utf8Start }
    static var emptyObject: UnsafePointer<UInt8> { ("{}" as StaticString).utf8Start }
}
