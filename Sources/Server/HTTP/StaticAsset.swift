import CompressNIO
import Crypto
import HTTPTypes
import Hummingbird
import NIOCore

/// A file Tally serves itself (the tracker script, the dashboard): its bytes, gzipped once at
/// start, an ETag from their SHA-256, and a cache policy. Conditional requests get 304.
struct StaticAsset: Sendable {
    let body: ByteBuffer
    let gzipped: ByteBuffer?
    let etag: String
    let contentType: String
    let cacheControl: String

    init(_ bytes: [UInt8], contentType: String, cacheControl: String) {
        body = ByteBuffer(bytes: bytes)
        var source = body
        gzipped = try? source.compress(with: .gzip(configuration: .init(compressionLevel: 9)))
        let digest = SHA256.hash(data: bytes).prefix(12).map { String(format: "%02x", $0) }.joined()
        etag = "\"\(digest)\""
        self.contentType = contentType
        self.cacheControl = cacheControl
    }

    func response(to request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType, .cacheControl: cacheControl, .eTag: etag, .vary: "Accept-Encoding",
        ]
        if let match = request.headers[.ifNoneMatch],
           match == "*" || match.split(separator: ",").contains(where: { tag in
               let t = tag.trimmingCharacters(in: .whitespaces)
               return t == etag || t == "W/" + etag
           }) {
            return Response(status: .notModified, headers: headers)
        }
        let accepts = request.headers[values: .acceptEncoding].joined(separator: ",").lowercased()
        if let gzipped, Self.acceptsGzip(accepts) {
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: gzipped))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    /// Whether an Accept-Encoding value allows gzip (listed, and not with q=0).
    static func acceptsGzip(_ value: String) -> Bool {
        for item in value.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.first == "gzip" || parts.first == "*" else { continue }
            let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return q > 0
        }
        return false
    }

    /// The tracker, `GET /t.js`: a day in caches, then revalidated by its ETag.
    static let tracker = StaticAsset(PackageResources.t_js, contentType: "application/javascript; charset=utf-8",
                                     cacheControl: "public, max-age=86400, stale-while-revalidate=604800")

    /// The dashboard's files (`GET /` and what it loads): revalidated on every use, so an upgraded
    /// server is seen at once; the ETag makes that a 304.
    static let dashboard: [String: StaticAsset] = [
        "/": StaticAsset(PackageResources.dashboard_html, contentType: "text/html; charset=utf-8", cacheControl: "no-cache"),
        "/dashboard.js": StaticAsset(PackageResources.dashboard_js, contentType: "application/javascript; charset=utf-8",
                                     cacheControl: "no-cache"),
        "/dashboard.css": StaticAsset(PackageResources.dashboard_css, contentType: "text/css; charset=utf-8", cacheControl: "no-cache"),
        "/chart.js": StaticAsset(PackageResources.chart_js, contentType: "application/javascript; charset=utf-8",
                                 cacheControl: "no-cache"),
    ]
}
