import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from ddforge.core.metrics import binary_auroc, classification_metrics, macro_auroc


def test_auroc_matches_scikit_learn_including_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (80,), generator=g).float()  # many ties
    positive = torch.randint(0, 2, (80,), generator=g).bool()
    assert abs(binary_auroc(scores, positive) - roc_auc_score(positive.numpy(), scores.numpy())) < 1e-12
    probs = torch.rand(90, 4, generator=g).softmax(1)
    labels = torch.randint(0, 4, (90,), generator=g)
    expected = roc_auc_score(labels.numpy(), probs.numpy(), multi_class="ovr", average="macro")
    assert abs(macro_auroc(probs, labels, 4) - expected) < 1e-12


def test_imbalanced_metrics_by_hand():
    # 8 negatives all right, 2 positives both wrong: accuracy 0.8 but balanced accuracy 0.5
    labels = torch.tensor([0] * 8 + [1] * 2)
    logits = torch.zeros(10, 2)
    logits[:, 0] = 1.0
    m = classification_metrics(logits, labels, 2)
    assert abs(m["accuracy"] - 0.8) < 1e-6
    assert m["balanced_accuracy"] == balanced_accuracy_score(labels.numpy(), logits.argmax(1).numpy()) == 0.5
    assert m["sensitivity"] == [1.0, 0.0] and m["specificity"] == [0.0, 1.0]
