"""``kennel.inputs``: training channels (SageMaker's ``sagemaker.inputs``).

``DatasetInput`` is kennel's own: a channel fed by a registered data set.
"""

from kennel.sdk._inputs import DatasetInput, TrainingInput

__all__ = ["DatasetInput", "TrainingInput"]
