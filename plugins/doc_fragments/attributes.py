# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The descriptions of the attributes every module of the collection documents. A module names
# the fragments it uses in extends_documentation_fragment and adds, per attribute, only its
# own support level and details.

from __future__ import annotations


class ModuleDocFragment:
    # check_mode and diff_mode: every module.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a prediction of the changed status without changing the target.
  diff_mode:
    description: Returns what changed, or would change in check mode, when run in diff mode.
"""

    # Modules written in PowerShell that run on the Windows host.
    WINDOWS = r"""
options: {}
attributes:
  platform:
    description: The target operating systems the module can run against.
    support: full
    platforms: windows
"""

    # Python modules meant to run on the controller (delegate_to localhost).
    CONTROLLER = r"""
options: {}
attributes:
  platform:
    description: The operating systems the module can run on; it is meant to run on the controller.
    support: full
    platforms: posix
"""

    # Modules whose work is done by an action plugin on the controller.
    ACTION = r"""
options: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin, so some parts of it run on the controller.
    support: full
"""
