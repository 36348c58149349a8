# The prompt names user, host and directory, as on the Debian and Yocto test
# images, so one QEMU harness (ci/qemu/strategy.py) drives all of them.
if [ -n "$PS1" ]; then
	export PS1='\u@\h:\w# '
fi
