import ArgumentParser
import NN

/// The closed choices of the training configuration: typed on the command line (`ExpressibleByArgument`, so
/// `--help` lists the values and a wrong one is refused with them), in config files and in `options.json`.

/// patchgd: PatchGD over patch grids; gd: the backbone on the whole image downscaled to `--image-size`.
public enum MethodChoice: String, Sendable, Codable, CaseIterable, ExpressibleByArgument { case patchgd, gd }

public enum OptimizerChoice: String, Sendable, Codable, CaseIterable, ExpressibleByArgument { case sgd, adam, adamw }

/// The learning-rate schedule after warm-up.
public enum ScheduleChoice: String, Sendable, Codable, CaseIterable, ExpressibleByArgument { case constant, cosine, linear, step }

/// The validation metric that picks `best.safetensors`.
public enum SelectBy: String, Sendable, Codable, CaseIterable, ExpressibleByArgument { case kappa, accuracy }

/// none, or EfficientTrain++ (low resolution and weak augmentation first, in stages of equal compute).
public enum CurriculumChoice: String, Sendable, Codable, CaseIterable, ExpressibleByArgument { case none, efficienttrain }

/// How the PatchGD head's stride-2 blocks treat small grids: fixed (the reference head: a 4 x 4 grid is 1 x 1 from
/// block 2 on) or adaptive (stride only while a block's input is at least 4 x 4; the same head on 16 x 16 and larger).
public enum HeadStrides: String, Sendable, Codable, CaseIterable, ExpressibleByArgument { case fixed, adaptive }

/// Augmentation presets, as data: what each turns on (the strength options override them).
public enum AugmentationPreset: String, Sendable, Codable, CaseIterable, ExpressibleByArgument {
    /// Flips, quarter turns and colour jitter (brightness, contrast, saturation).
    case basic
    /// H&E slides: basic plus HED stain jitter (Tellez et al. 2018's light setting), a small hue turn, mild blur
    /// (focus) and noise (sensor), the variation between scanners and labs.
    case he

    public var settings: AugmentationSettings {
        switch self {
        case .basic: return AugmentationSettings()
        case .he: return AugmentationSettings(hedJitter: 0.05, hueJitter: 0.04, blur: 1, noise: 0.02)
        }
    }
}

extension LossKind: ExpressibleByArgument {}
extension BatchNormMode: ExpressibleByArgument {}
extension FillStatistics: ExpressibleByArgument {}
extension OversizePolicy: ExpressibleByArgument {}
extension LowPassMethod: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
