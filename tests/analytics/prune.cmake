# Issue 9, pruning and central training (docs/model.md "Pruning", "Training centrally"):
# magnitude pruning with fine-tuning in the gateway's trainer, and the reference PyTorch script
# deploy/tools/train_autoencoder.py end to end (features CSV -> torch -> ONNX -> `vibgate model
# import` -> score/eval; skips with a message without python3-torch).
vibgate_add_gtest(prune_test analytics/prune_test.cpp)
# ~30 s (two torch trainings of ~6 s each, mostly importing torch); CWRU data when present.
vibgate_add_pytest(reference_training analytics/test_reference_training.py)
set_tests_properties(reference_training PROPERTIES TIMEOUT 300)
# ~3 s: features --model-input against the documented transforms, train --prune summary and refusals.
vibgate_add_pytest(prune_cli analytics/test_prune_cli.py)
