# Issue 9, pruning and central training (docs/model.md "Pruning", "Training centrally"):
# magnitude pruning with fine-tuning in the gateway's trainer, and the reference PyTorch script
# deploy/tools/train_autoencoder.py end to end (features CSV -> torch -> ONNX -> `vibgate model
# import` -> score/eval; skips with a message without python3-torch).
vibgate_add_gtest(prune_test analytics/prune_test.cpp)
