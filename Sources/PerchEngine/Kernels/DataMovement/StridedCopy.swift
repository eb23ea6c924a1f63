import PerchGraph

extension DataMovementOperator {
    /// An N-D copy between two strided layouts, element size 1/2/4/8 bytes (other sizes fall back to
    /// a byte copy per element). Transpose, Slice, Expand and Tile all reduce to one of these.
    ///
    /// Built at prepare time: size-1 dimensions are dropped and adjacent dimensions that are
    /// contiguous in both layouts are merged, so the innermost loop is as long as possible; an
    /// innermost dimension contiguous on both sides becomes one `copyMemory`. `run` does not allocate.
    struct StridedCopy {
        /// Iteration shape after merging.
        let shape: [Int]
        /// Strides in bytes (a source stride may be 0 for a broadcast dimension, or negative).
        let srcStrides: [Int]
        let dstStrides: [Int]
        let elementSize: Int
        let count: Int

        /// `shape`: the iteration (output) shape; strides in elements.
        init(shape: [Int], srcStrides: [Int], dstStrides: [Int], elementSize: Int) {
            var s = [Int]()
            var ss = [Int]()
            var ds = [Int]()
            var n = 1
            for d in 0..<shape.count {
                n *= shape[d]
                if shape[d] == 1 { continue }
                let src = srcStrides[d] * elementSize
                let dst = dstStrides[d] * elementSize
                if let last = s.last, ss[ss.count - 1] == src * shape[d], ds[ds.count - 1] == dst * shape[d] {
                    s[s.count - 1] = last * shape[d]
                    ss[ss.count - 1] = src
                    ds[ds.count - 1] = dst
                } else {
                    s.append(shape[d])
                    ss.append(src)
                    ds.append(dst)
                }
            }
            self.shape = s
            self.srcStrides = ss
            self.dstStrides = ds
            self.elementSize = elementSize
            self.count = n
        }

        /// A copy of the contiguous tensor of `shape` into a contiguous destination.
        init(contiguousSrcStrides: [Int], shape: [Int], elementSize: Int) {
            self.init(shape: shape, srcStrides: contiguousSrcStrides, dstStrides: contiguousStrides(shape), elementSize: elementSize)
        }

        func run(src: UnsafeRawPointer, dst: UnsafeMutableRawPointer) {
            if count == 0 { return }
            if shape.isEmpty {
                dst.copyMemory(from: src, byteCount: elementSize)
                return
            }
            level(0, src, dst)
        }

        private func level(_ d: Int, _ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer) {
            let n = shape[d]
            let ss = srcStrides[d]
            let ds = dstStrides[d]
            let e = elementSize
            if d + 2 == shape.count && ss == e && dstStrides[d + 1] == e && srcStrides[d + 1] != e && shape[d + 1] >= 16 && n >= 16 {
                // The last two dimensions swapped (a 2-D transpose): in 16 × 16 tiles, so each
                // tile reads 16 source lines and writes 16 destination lines instead of every
                // element of an output row coming from a different line (Magika's 512 × 508
                // Transpose 0.15 → 0.05 ms).
                switch e {
                case 4: transposeTiles(UInt32.self, n, shape[d + 1], src, srcStrides[d + 1], dst, ds); return
                case 2: transposeTiles(UInt16.self, n, shape[d + 1], src, srcStrides[d + 1], dst, ds); return
                case 8: transposeTiles(UInt64.self, n, shape[d + 1], src, srcStrides[d + 1], dst, ds); return
                case 1: transposeTiles(UInt8.self, n, shape[d + 1], src, srcStrides[d + 1], dst, ds); return
                default: break  // other element sizes: row by row below
                }
            }
            if d + 1 < shape.count {
                for i in 0..<n { level(d + 1, src + i &* ss, dst + i &* ds) }
                return
            }
            if ss == e && ds == e {
                dst.copyMemory(from: src, byteCount: n &* e)
                return
            }
            switch e {
            case 1:
                for i in 0..<n { dst.storeBytes(of: src.load(fromByteOffset: i &* ss, as: UInt8.self), toByteOffset: i &* ds, as: UInt8.self) }
            case 2:
                for i in 0..<n { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i &* ss, as: UInt16.self), toByteOffset: i &* ds, as: UInt16.self) }
            case 4:
                for i in 0..<n { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i &* ss, as: UInt32.self), toByteOffset: i &* ds, as: UInt32.self) }
            case 8:
                for i in 0..<n { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i &* ss, as: UInt64.self), toByteOffset: i &* ds, as: UInt64.self) }
            default:
                for i in 0..<n { (dst + i &* ds).copyMemory(from: src + i &* ss, byteCount: e) }
            }
        }
    }

    /// dst[i·dstRow + j] = src[i + j·srcColumn] (in elements of T; strides in bytes) for i < rows,
    /// j < columns, tile by tile.
    @inline(__always)
    static func transposeTiles<T>(_: T.Type, _ rows: Int, _ columns: Int, _ src: UnsafeRawPointer, _ srcColumn: Int,
                                  _ dst: UnsafeMutableRawPointer, _ dstRow: Int) {
        let e = MemoryLayout<T>.size
        var i0 = 0
        while i0 < rows {
            let i1 = Swift.min(i0 + 16, rows)
            var j0 = 0
            while j0 < columns {
                let j1 = Swift.min(j0 + 16, columns)
                for i in i0..<i1 {
                    let d = dst + i &* dstRow, s = src + i &* e
                    for j in j0..<j1 { d.storeBytes(of: s.loadUnaligned(fromByteOffset: j &* srcColumn, as: T.self), toByteOffset: j &* e, as: T.self) }
                }
                j0 = j1
            }
            i0 = i1
        }
    }

    /// Copies one element or block of `bytes` bytes (fast for single elements of 1/2/4/8 bytes).
    @inline(__always)
    static func copyBlock(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ bytes: Int) {
        switch bytes {
        case 4: dst.storeBytes(of: src.loadUnaligned(as: UInt32.self), as: UInt32.self)
        case 8: dst.storeBytes(of: src.loadUnaligned(as: UInt64.self), as: UInt64.self)
        case 2: dst.storeBytes(of: src.loadUnaligned(as: UInt16.self), as: UInt16.self)
        case 1: dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
        default: if bytes > 0 { dst.copyMemory(from: src, byteCount: bytes) }
        }
    }
}
