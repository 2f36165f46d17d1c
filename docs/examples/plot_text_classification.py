"""
==========================================================
Text classification on sparse TF-IDF features
==========================================================

A :class:`~sklearn.feature_extraction.text.TfidfVectorizer` turns documents
into a sparse matrix with one column per term, nearly all of it zeros. The
estimators take such a matrix as it is: its rows go straight into compiled
first-layer kernels that loop over the nonzero entries only, so the matrix is
never converted to a dense array, neither for training nor for prediction.

The corpus is generated here, so the example needs no download: short
"support tickets" about four topics, written with overlapping vocabularies
and some off-topic words, so that the task is not trivial.
"""

# %%
# A generated corpus
# ------------------
import numpy as np

rng = np.random.RandomState(0)
topics = {
    "billing": "invoice refund charge payment card receipt price subscription "
               "discount overcharged plan bank",
    "shipping": "parcel delivery courier tracking address late warehouse box "
                "shipped delayed package arrived",
    "account": "password login username email locked reset profile security "
               "verification settings signin account",
    "product": "broken screen battery charger button update crash app "
               "feature manual warranty device",
}
shared = ("please help thanks hello order today again still week problem "
          "customer service question urgent issue").split()
labels = list(topics)
vocab = {t: words.split() for t, words in topics.items()}


def make_ticket(topic):
    """8-20 words: mostly shared filler, some topic words and, one time in
    five, a word from another topic."""
    words = []
    for _ in range(rng.randint(8, 21)):
        r = rng.rand()
        if r < 0.35:
            words.append(rng.choice(vocab[topic]))
        elif r < 0.45:
            other = labels[rng.randint(len(labels))]
            words.append(rng.choice(vocab[other]))
        else:
            words.append(rng.choice(shared))
    return " ".join(words)


y = np.array([labels[i % len(labels)] for i in range(1200)])
docs = [make_ticket(topic) for topic in y]
for topic, doc in zip(y[:4], docs[:4]):
    print(f"{topic:>9}: {doc}")

# %%
# The pipeline
# ------------
# ``dtype=np.float32`` on the vectorizer makes the matrix float32, and the
# classifier then trains and predicts in float32 as well (see
# :ref:`float32`). ``early_stopping=True`` holds out a stratified tenth of
# the training documents and keeps the best epoch.
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import ConfusionMatrixDisplay, classification_report
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skminibatch import MiniBatchMLPClassifier

docs_train, docs_test, y_train, y_test = train_test_split(
    docs, y, test_size=0.25, stratify=y, random_state=0)

pipe = make_pipeline(
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
    MiniBatchMLPClassifier(hidden_layer_sizes=(32,), batch_size=32,
                           early_stopping=True, max_iter=100, random_state=0),
)
pipe.fit(docs_train, y_train)

tfidf, mlp = pipe[0], pipe[-1]
X_train = tfidf.transform(docs_train)
print(f"X_train: {type(X_train).__name__} of shape {X_train.shape}, "
      f"{X_train.nnz / np.prod(X_train.shape):.1%} nonzero, {X_train.dtype}")
print(f"first-layer weights: {mlp.coefs_[0].shape}, {mlp.coefs_[0].dtype}")
print(f"stopped after {mlp.n_iter_} epochs, "
      f"best validation accuracy {mlp.best_validation_score_:.3f}")

# %%
# Evaluation
# ----------
y_pred = pipe.predict(docs_test)
print(classification_report(y_test, y_pred, digits=3))

_ = ConfusionMatrixDisplay.from_predictions(y_test, y_pred, cmap="Blues",
                                            colorbar=False)

# %%
# New documents go through the same pipeline; ``predict_proba`` gives the
# class probabilities in the order of ``classes_``.
new = ["my card was charged twice please refund",
       "the courier says the parcel was delivered but no box arrived",
       "cannot login after the password reset email"]
proba = pipe.predict_proba(new)
for text, p in zip(new, proba):
    print(f"{pipe.classes_[p.argmax()]:>9} ({p.max():.2f}): {text}")
