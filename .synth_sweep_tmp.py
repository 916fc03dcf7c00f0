import sys, time, torch, numpy as np, tempfile
import fgvc_lib
from fgvc_lib.data import synthetic as S
from torchvision import transforms as T
dev = "cuda"
tf = T.Compose([T.ToTensor(), T.Normalize([0.5]*3, [0.25]*3)])
VARIANTS = {"shift0.06": {"MAX_SHIFT": 0.06}, "shift0.1": {"MAX_SHIFT": 0.1}, "shift0.15": {"MAX_SHIFT": 0.15},
            "shift1": {"MAX_SHIFT": 1.0}}
def run(variant, seed, epochs=6, data_seed=0):
    for k, v in VARIANTS[variant].items(): setattr(S, k, v)
    root = tempfile.mkdtemp()
    train = S.SyntheticFGVC(root=root, split="train", transform=tf, num_classes=10, per_class=40, seed=data_seed)
    test = S.SyntheticFGVC(root=root, split="test", transform=tf, num_classes=10, per_class=20, seed=data_seed)
    xs = torch.stack([train[i][0] for i in range(len(train))]).to(dev); ys = torch.tensor(train.targets, device=dev)
    xt = torch.stack([test[i][0] for i in range(len(test))]).to(dev); yt = torch.tensor(test.targets, device=dev)
    torch.manual_seed(seed)
    model = fgvc_lib.build_model("baseline", 10, backbone="resnet18").to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed); accs = []
    for ep in range(epochs):
        model.train(); perm = torch.randperm(len(ys), generator=g).to(dev)
        for i in range(0, len(ys), 32):
            idx = perm[i:i+32]; loss = torch.nn.functional.cross_entropy(model(xs[idx]).logits, ys[idx])
            opt.zero_grad(); loss.backward(); opt.step()
        model.eval()
        with torch.no_grad(): accs.append((model(xt).logits.argmax(1) == yt).float().mean().item())
    return accs
for variant in sys.argv[1].split(","):
    res = [run(variant, s, 6, ds) for ds in (0, 1, 2) for s in range(3)]
    print(variant, "acc@ep4,5,6 mean", [round(float(np.mean([r[i] for r in res])), 3) for i in (3, 4, 5)],
          "min@5", round(min(r[4] for r in res), 2), flush=True)
