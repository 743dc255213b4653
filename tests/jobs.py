"""The prompts and model of the design's example, shared by the tests."""

from pydantic import BaseModel, Field

from promptlog import prompt


@prompt("system")
def namer_system(type_of_manager):
    """You are an {{ type_of_manager }}."""


@prompt("user")
def namer_user(job_description):
    """Give me a name for a job that follows this description: {{ job_description }}."""


class JobName(BaseModel):
    name: str = Field(..., description="A job name.")
    description: str = Field(..., description="A job description.")
