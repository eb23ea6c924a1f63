import PerchGraph

/// Einsum: any equation of letter subscripts with an optional `...` and optional `->` output
/// (implicit output: the ellipsis dims, then the letters used once, alphabetically). A letter
/// repeated inside one operand takes a diagonal; `...` dims broadcast NumPy-style (right
/// aligned, size 1 stretches).
///
/// Evaluated directly: every output element sums, over all values of the summed letters, the
/// product of the operands. Both index spaces are flattened into offset tables at prepare time,
/// so the kernel is two plain loops — correct for every equation, fast only for small ones (a
/// batched matmul written as Einsum does not use the GEMM).
extension IndexingOperator {
    static func prepareEinsum(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let equation = ctx.attributes.string("equation", default: "")
        var descs = [TensorDesc]()
        for i in 0..<ctx.inputCount { descs.append(try ctx.input(i)) }
        guard !descs.isEmpty else { throw ctx.invalid("needs at least one input") }
        let dtype = descs[0].dtype
        for d in descs where d.dtype != dtype { throw ctx.invalid("input types differ: " + dtype.name + " vs " + d.dtype.name) }
        guard dtype.isFloatingPoint || dtype.isInteger else { throw ctx.unsupported("input type " + dtype.name) }

        // Split "lhs->rhs" and the lhs into terms; letters become 0..<52, "..." becomes -1.
        var chars = [UInt8]()
        for c in equation.utf8 where c != UInt8(ascii: " ") { chars.append(c) }
        var lhs = chars
        var rhs: [UInt8]? = nil
        var i = 0
        while i + 1 < chars.count {
            if chars[i] == UInt8(ascii: "-") && chars[i + 1] == UInt8(ascii: ">") {
                lhs = Array(chars[0..<i])
                rhs = Array(chars[(i + 2)...])
                break
            }
            i += 1
        }
        func parse(_ term: [UInt8]) throws(EngineError) -> [Int] {
            var out = [Int]()
            var k = 0
            while k < term.count {
                let c = term[k]
                if c == UInt8(ascii: ".") {
                    guard k + 2 < term.count && term[k + 1] == c && term[k + 2] == c else { throw ctx.invalid("bad ellipsis in \"" + equation + "\"") }
                    guard !out.contains(-1) else { throw ctx.invalid("two ellipses in one term of \"" + equation + "\"") }
                    out.append(-1)
                    k += 3
                    continue
                }
                if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") {
                    out.append(Int(c - UInt8(ascii: "a")))
                } else if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") {
                    out.append(26 + Int(c - UInt8(ascii: "A")))
                } else {
                    throw ctx.invalid("unexpected character in equation \"" + equation + "\"")
                }
                k += 1
            }
            return out
        }
        var terms = [[Int]]()
        var current = [UInt8]()
        for c in lhs {
            if c == UInt8(ascii: ",") {
                terms.append(try parse(current))
                current = []
            } else {
                current.append(c)
            }
        }
        terms.append(try parse(current))
        guard terms.count == descs.count else {
            throw ctx.invalid("equation \"" + equation + "\" has " + String(terms.count) + " operands, the node " + String(descs.count))
        }

        // Ellipsis dims get labels 52, 53, …, right aligned across operands.
        var ellipsisRank = 0
        for (t, term) in terms.enumerated() {
            let letters = term.filter { $0 >= 0 }.count
            if term.contains(-1) {
                guard descs[t].rank >= letters else { throw ctx.invalid("operand " + String(t) + " has too few dims for its subscripts") }
                ellipsisRank = Swift.max(ellipsisRank, descs[t].rank - letters)
            } else if descs[t].rank != letters {
                throw ctx.invalid("operand " + String(t) + " has rank " + String(descs[t].rank) + " but " + String(letters) + " subscripts")
            }
        }
        var sizes = [Int](repeating: 1, count: 52 + ellipsisRank)
        var used = [Int](repeating: 0, count: 52 + ellipsisRank)
        // Per operand: the label of each dim.
        var dimLabels = [[Int]]()
        for (t, term) in terms.enumerated() {
            var labels = [Int]()
            for l in term {
                if l >= 0 {
                    labels.append(l)
                } else {
                    let n = descs[t].rank - (term.count - 1)
                    for e in 0..<n { labels.append(52 + ellipsisRank - n + e) }
                }
            }
            for (d, l) in labels.enumerated() {
                let s = descs[t].shape[d]
                if s != 1 {
                    if sizes[l] != 1 && sizes[l] != s {
                        throw ctx.invalid("subscript sizes " + String(sizes[l]) + " and " + String(s) + " disagree in \"" + equation + "\"")
                    }
                    sizes[l] = s
                } else if used[l] == 0 {
                    sizes[l] = 1
                }
                used[l] += 1
            }
            dimLabels.append(labels)
        }
        var outLabels = [Int]()
        if let rhs {
            for l in try parse(rhs) {
                if l >= 0 {
                    guard used[l] > 0 else { throw ctx.invalid("output subscript not among the inputs in \"" + equation + "\"") }
                    guard !outLabels.contains(l) else { throw ctx.invalid("output subscript repeated in \"" + equation + "\"") }
                    outLabels.append(l)
                } else {
                    for e in 0..<ellipsisRank { outLabels.append(52 + e) }
                }
            }
        } else {
            for e in 0..<ellipsisRank { outLabels.append(52 + e) }
            for l in 0..<52 where used[l] == 1 { outLabels.append(l) }
        }
        var sumLabels = [Int]()
        for l in 0..<(52 + ellipsisRank) where used[l] > 0 && !outLabels.contains(l) { sumLabels.append(l) }

        // Element stride of each label in each operand (summed over repeated dims; 0 when the
        // operand's dim is 1 and broadcast).
        let ops = descs.count
        var labelStride = [[Int]](repeating: [Int](repeating: 0, count: 52 + ellipsisRank), count: ops)
        for t in 0..<ops {
            let strides = contiguousStrides(descs[t].shape)
            for (d, l) in dimLabels[t].enumerated() where descs[t].shape[d] != 1 {
                labelStride[t][l] += strides[d]
            }
        }
        func table(_ labels: [Int]) -> [Int] {
            var total = 1
            for l in labels { total *= sizes[l] }
            var result = [Int](repeating: 0, count: total * ops)
            if total == 0 { return result }
            var index = [Int](repeating: 0, count: labels.count)
            var offsets = [Int](repeating: 0, count: ops)
            for i in 0..<total {
                for t in 0..<ops { result[i * ops + t] = offsets[t] }
                var k = labels.count - 1
                while k >= 0 {
                    let l = labels[k]
                    index[k] += 1
                    for t in 0..<ops { offsets[t] += labelStride[t][l] }
                    if index[k] < sizes[l] { break }
                    for t in 0..<ops { offsets[t] -= labelStride[t][l] * sizes[l] }
                    index[k] = 0
                    k -= 1
                }
            }
            return result
        }
        let outOffsets = table(outLabels)
        let sumOffsets = table(sumLabels)
        let outCount = outOffsets.count / ops
        let sumCount = sumOffsets.count / ops
        let out = TensorDesc(dtype: dtype, shape: outLabels.map { sizes[$0] })
        if dtype == .f32 {
            return PreparedOp(outputs: [out]) { args in
                let y = args.output(0).pointer(as: Float.self)
                let a = args.input(0).pointer(as: Float.self)
                let b = ops > 1 ? args.input(1).pointer(as: Float.self) : a
                for o in 0..<outCount {
                    var acc: Float = 0
                    if ops == 2 {
                        let pa = a + outOffsets[o * 2], pb = b + outOffsets[o * 2 + 1]
                        for r in 0..<sumCount { acc += pa[sumOffsets[r * 2]] * pb[sumOffsets[r * 2 + 1]] }
                    } else if ops == 1 {
                        let pa = a + outOffsets[o]
                        for r in 0..<sumCount { acc += pa[sumOffsets[r]] }
                    } else {
                        for r in 0..<sumCount {
                            var p: Float = 1
                            for t in 0..<ops { p *= args.input(t).pointer(as: Float.self)[outOffsets[o * ops + t] + sumOffsets[r * ops + t]] }
                            acc += p
                        }
                    }
                    y[o] = acc
                }
            }
        }
        let isFloat = dtype.isFloatingPoint
        return PreparedOp(outputs: [out]) { args in
            let y = args.output(0)
            for o in 0..<outCount {
                var accD = 0.0
                var accI: Int64 = 0
                for r in 0..<sumCount {
                    var pD = 1.0
                    var pI: Int64 = 1
                    for t in 0..<ops {
                        let at = outOffsets[o * ops + t] + sumOffsets[r * ops + t]
                        if isFloat { pD *= args.input(t).double(at) } else { pI = pI &* args.input(t).int64(at) }
                    }
                    accD += pD
                    accI = accI &+ pI
                }
                if isFloat { y.setDouble(o, accD) } else { y.setInt64(o, accI) }
            }
        }
    }
}
