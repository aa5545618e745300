import Foundation
import TestSupport
import Testing
@testable import UltraMNIST

struct MNISTTests {
    @Test(arguments: [(true, false), (false, false), (true, true), (false, true)])
    func loadsGzipAndPlainWithBothNamings(gzip: Bool, dotted: Bool) throws {
        let dir = TemporaryDirectory()
        try FakeMNIST.write(to: dir.path, train: 30, test: 20, gzip: gzip, dottedNames: dotted)
        let train = try MNISTSet.load(directory: dir.path, part: .train)
        let test = try MNISTSet.load(directory: dir.path, part: .test)
        #expect(train.count == 30 && test.count == 20)
        #expect(train.labels[13] == 3)
        #expect(train.images[13 * 784 + 10 * 28 + 10] == 145)
        #expect(train.indicesByDigit()[7] == [7, 17, 27])
    }

    @Test func missingFileNamesWhatWasLookedFor() throws {
        let dir = TemporaryDirectory()
        let error = try #require(throws: MNISTError.self) { try MNISTSet.load(directory: dir.path, part: .train) }
        #expect(error.description.contains("train-images-idx3-ubyte"))
        #expect(error.description.contains("README"))
    }

    @Test func wrongMagicTruncationAndCountMismatchAreClear() throws {
        let dir = TemporaryDirectory()
        let (images, labels) = FakeMNIST.idx(count: 10)
        let imagesPath = dir.file("train-images-idx3-ubyte"), labelsPath = dir.file("train-labels-idx1-ubyte")

        try FakeMNIST.write(labels, to: imagesPath, gzip: false)   // labels where images belong
        try FakeMNIST.write(labels, to: labelsPath, gzip: false)
        var error = try #require(throws: MNISTError.self) { try MNISTSet.load(directory: dir.path, part: .train) }
        #expect(error.path == imagesPath && error.message.contains("magic"))

        try FakeMNIST.write(Array(images.prefix(16 + 784 * 5)), to: imagesPath, gzip: false)
        error = try #require(throws: MNISTError.self) { try MNISTSet.load(directory: dir.path, part: .train) }
        #expect(error.path == imagesPath && error.message.contains("truncated"))

        try FakeMNIST.write(images, to: imagesPath, gzip: false)
        try FakeMNIST.write(FakeMNIST.idx(count: 9).labels, to: labelsPath, gzip: false)
        error = try #require(throws: MNISTError.self) { try MNISTSet.load(directory: dir.path, part: .train) }
        #expect(error.path == labelsPath && error.message.contains("9 labels"))
    }

    @Test(.enabled(if: SharedData.file("mnist/train-images-idx3-ubyte.gz") != nil, "../shared/data/mnist is absent"))
    func realMNIST() throws {
        let dir = try #require(SharedData.file("mnist"))
        let train = try MNISTSet.load(directory: dir, part: .train)
        let test = try MNISTSet.load(directory: dir, part: .test)
        #expect(train.count == 60000 && test.count == 10000)
        #expect(Array(train.labels.prefix(5)) == [5, 0, 4, 1, 9])
        #expect(Array(test.labels.prefix(3)) == [7, 2, 1])
    }
}
