import Testing
@testable import NN

/// Prepared operands are released with their last user: Winograd's 16 packed weight matrices once used (a leak of
/// them grew a bf16 run by 1.5 MB a step).
struct PackedOperandTests {
    @Test(arguments: [Precision.fp32, .bf16], [false, true])
    func winogradsPreparedWeightsAreReleased(precision: Precision, transposed: Bool) {
        let w = Winograd(n: 1, c: 8, o: 16, h: 16, w: 16, precision: precision)
        let u = Tensor(shape: [16 * 8 * 16])
        weak var first: PackedOperand?, last: PackedOperand?
        do {
            let operands = w.packed(u.pointer, transposed: transposed)
            #expect(operands.count == 16)
            #expect(operands[3].m == (transposed ? 8 : 16) && operands[3].k == (transposed ? 16 : 8))
            first = operands[0]
            last = operands[15]
        }
        #expect(first == nil && last == nil, "packed operands outlived their array")
    }
}
